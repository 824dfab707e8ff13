"""What a user declares about an agent, and the checks of the numbers users give.

Kept apart from `model` (which is compiled with mypyc, see scripts/native.py): these take
whatever a user passes and must answer a wrong type with an error naming the field, where a
compiled signature would raise a bare TypeError first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from swarmbalancer.errors import TaskRejected


@dataclass(slots=True)
class AgentSpec:
    """What a user declares about an agent: fixed for its lifetime.

    `speed_hint` is only a prior for the speed the balancer learns (work units per second), as a
    deployment might guess it; None means no guess (the learned speed starts at 1.0).
    """

    id: str
    capacity: int = 1
    weight: float = 1.0
    speed_hint: float | None = None
    region: str | None = None
    cost: float = 0.0
    tags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise TaskRejected(f"agent id: {self.id!r} is not a non-empty string")
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int):
            raise TaskRejected(f"capacity: {self.capacity!r} is not a whole number")
        if self.capacity < 1:
            raise TaskRejected(f"capacity: must be >= 1, got {self.capacity}")
        check_number("weight", self.weight, positive=True)
        if self.speed_hint is not None:
            check_number("speed_hint", self.speed_hint, positive=True)
        check_number("cost", self.cost, positive=False)
        if self.cost < 0:
            raise TaskRejected(f"cost: must be >= 0, got {self.cost}")


def check_number(name: str, value: object, *, positive: bool) -> float:
    """`value` as a float: a finite int or float (bools, NaN, infinities and floats' overflow
    are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TaskRejected(f"{name}: {short(value)} is not a number")
    try:
        number = float(value)
    except OverflowError:
        raise TaskRejected(f"{name}: {short(value)} is too large") from None
    if not math.isfinite(number):
        raise TaskRejected(f"{name}: {value!r} is not a finite number")
    if positive and number <= 0:
        raise TaskRejected(f"{name}: must be > 0, got {value!r}")
    return number


def short(value: object) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge integer"
    return text if len(text) <= 60 else text[:57] + "..."
