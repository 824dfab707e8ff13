"""Read JSONL traces: recorded tasks (`tasks.file`) and recorded arrival times (`process: trace`).

Readers raise `ValueError` with `<file> line <n>: <field>: <problem>`; the workload loader prefixes
the workload file and the key that named the trace.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from swarmbalancer.documents import DocumentError, loads_json, read_text
from swarmbalancer.errors import TaskRejected
from swarmbalancer.model import Priority
from swarmbalancer.workload.limits import MAX_SECONDS, MAX_TASKS, MAX_TRACE_BYTES
from swarmbalancer.workload.messages import describe


def default_task_id(index: int) -> str:
    """The id of the task at `index` when nothing else names it: `t000042`."""
    return f"t{index:06d}"


class TraceRow(BaseModel):
    """One recorded task. Only `work` is required; `deadline` is absolute (workload seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    id: str | None = Field(default=None, min_length=1)
    work: float = Field(ge=0, le=MAX_SECONDS)
    arrival: float = Field(default=0.0, ge=0, le=MAX_SECONDS)
    priority: Priority = Priority.NORMAL
    tenant: str | None = Field(default=None, min_length=1)
    deadline: float | None = Field(default=None, ge=-MAX_SECONDS, le=MAX_SECONDS)
    affinity: tuple[str, ...] | None = None
    estimate: float | None = Field(default=None, ge=0, le=MAX_SECONDS)

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: Any) -> Priority:
        try:
            return Priority.parse(value)
        except TaskRejected:
            names = ", ".join(p.label for p in Priority)
            raise ValueError(f"{value!r} is not one of {names}") from None

    @field_validator("affinity", mode="before")
    @classmethod
    def _affinity(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            if not value or not all(isinstance(v, str) and v for v in value):
                raise ValueError("must be a region or agent id, or a non-empty list of them")
            return tuple(value)
        return value


def read_task_trace(path: Path) -> list[tuple[int, TraceRow]]:
    """Every task of a JSONL task trace with its line number, in file order; blank lines skip."""
    rows: list[tuple[int, TraceRow]] = []
    for lineno, value in _json_lines(path):
        if not isinstance(value, dict):
            raise ValueError(f"{path.name} line {lineno}: expected a JSON object with `work`")
        try:
            rows.append((lineno, TraceRow.model_validate(value)))
        except ValidationError as exc:
            raise ValueError(f"{path.name} line {lineno}: {describe(exc, value)}") from None
    if not rows:
        raise ValueError(f"{path.name}: holds no tasks")
    return rows


def read_arrival_trace(path: Path) -> list[float]:
    """Every arrival time of a JSONL arrival trace: numbers, or objects with an `arrival` key."""
    times: list[float] = []
    for lineno, value in _json_lines(path):
        if isinstance(value, dict):
            if "arrival" not in value:
                raise ValueError(f"{path.name} line {lineno}: arrival: required")
            value = value["arrival"]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 <= value <= MAX_SECONDS
        ):
            shown = repr(value) if isinstance(value, int | float) else type(value).__name__
            raise ValueError(
                f"{path.name} line {lineno}: arrival: must be a number from 0 to "
                f"{MAX_SECONDS:.0e}, got {shown}"
            )
        times.append(float(value))
    return times


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """Each non-blank line parsed, within the document bounds; at most `MAX_TASKS` of them."""
    try:
        text = read_text(path, MAX_TRACE_BYTES)
    except DocumentError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    rows = 0
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        rows += 1
        if rows > MAX_TASKS:
            raise ValueError(f"{path.name} line {lineno}: more than {MAX_TASKS:,} rows")
        try:
            yield lineno, loads_json(line)
        except DocumentError as exc:
            problem = _FIRST_LINE.sub("", str(exc))  # the line number is the file's, not 1
            raise ValueError(f"{path.name} line {lineno}: {problem}") from None


_FIRST_LINE = re.compile(r"^line 1: | at line 1, column \d+(?=\)$)")
