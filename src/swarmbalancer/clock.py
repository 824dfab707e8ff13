"""Injected clocks: policies never read time themselves, they are handed `now`.

`MonotonicClock` serves the embedded runtime; `ManualClock` serves tests and the simulator,
where time moves only when told to.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current time in seconds."""

    def now(self) -> float:
        """Current time in seconds on this clock."""
        ...


class MonotonicClock:
    """Wall-clock seconds since this clock was created (monotonic, immune to clock changes)."""

    __slots__ = ("_origin",)

    def __init__(self) -> None:
        self._origin = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self._origin


class ManualClock:
    """A clock that moves only when `advance` or `set` is called."""

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
        return self._now

    def set(self, when: float) -> None:
        if when < self._now:
            raise ValueError("a clock cannot go backwards")
        self._now = when
