"""What a store can tell about one task by id, during its life and after it finished."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: `waiting`: accepted, not running (queued, parked or delayed for a retry); `removed`: taken out
#: before it finished (cancelled).
RecordState = Literal["waiting", "running", "done", "failed", "removed"]


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task's state as its store recorded it; `result` is the handler's return value (JSON) of
    a `done` task, `finished_wall` the Unix time its outcome was recorded."""

    id: str
    state: RecordState
    attempt: int
    result: Any = None
    error: str | None = None
    finished_wall: float | None = None

    @property
    def finished(self) -> bool:
        return self.state == "done" or self.state == "failed"
