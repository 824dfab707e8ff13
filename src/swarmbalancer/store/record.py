"""What a store can tell about one task by id, during its life and after it finished."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: `waiting`: accepted, not running (queued in the shared queue or at an agent, parked, or delayed
#: for a retry); `cancelled`: cancelled by the user before it finished (taken out of its queue,
#: or its running attempt interrupted).
RecordState = Literal["waiting", "running", "done", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task's state as its store recorded it; `result` is the handler's return value (JSON) of
    a `done` task, `finished_wall` the Unix time its outcome (done, failed or cancelled) was
    recorded."""

    id: str
    state: RecordState
    attempt: int
    result: Any = None
    error: str | None = None
    finished_wall: float | None = None

    @property
    def finished(self) -> bool:
        return self.state == "done" or self.state == "failed" or self.state == "cancelled"
