"""Arrival processes of generated tasks, discriminated by `process`.

Each model turns a task count and a `random.Random` into arrival times in seconds since the start
of the run (workload time 0): `iter_times` lazily, `times` as a list. Every process except a trace
yields them in non-decreasing order (`ordered`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from itertools import repeat
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from swarmbalancer.errors import WorkloadError
from swarmbalancer.workload.limits import (
    MAX_RATE,
    MAX_SECONDS,
    MIN_BURST_ARRIVALS,
    MIN_PERIOD,
    MIN_RATE,
)


class _Process(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    #: True when `iter_times` never decreases, so tasks need no sorting by arrival.
    ordered: ClassVar[bool] = True

    def iter_times(self, count: int, rng: random.Random) -> Iterator[float]:
        """The `count` arrival times, one at a time (same values as `times`)."""
        raise NotImplementedError

    def times(self, count: int, rng: random.Random) -> list[float]:
        """The `count` arrival times as a list."""
        return list(self.iter_times(count, rng))


class BatchArrival(_Process):
    """Every task arrives at the same instant `at`."""

    process: Literal["batch"]
    at: float = Field(default=0.0, ge=0, le=MAX_SECONDS)

    def iter_times(self, count: int, rng: random.Random) -> Iterator[float]:
        return repeat(self.at, count)


class PoissonArrival(_Process):
    """A Poisson process of `rate` arrivals per second: exponential gaps of mean 1/rate."""

    process: Literal["poisson"]
    rate: float = Field(ge=MIN_RATE, le=MAX_RATE)

    def iter_times(self, count: int, rng: random.Random) -> Iterator[float]:
        rate, gap = self.rate, rng.expovariate
        t = 0.0
        for _ in range(count):
            t += gap(rate)
            yield t


class BurstyArrival(_Process):
    """An on/off modulated Poisson process that starts in the on phase at time 0.

    Phases alternate: `on` seconds at `on_rate` arrivals per second, then `off` seconds at
    `off_rate` (0 means silence). Gaps are redrawn at each phase boundary (memorylessness).
    """

    process: Literal["bursty"]
    on_rate: float = Field(ge=MIN_RATE, le=MAX_RATE)
    off_rate: float = Field(default=0.0, ge=0, le=MAX_RATE)
    on: float = Field(gt=0, le=MAX_SECONDS)
    off: float = Field(gt=0, le=MAX_SECONDS)

    @model_validator(mode="after")
    def _cycle_has_arrivals(self) -> BurstyArrival:
        expected = self.on_rate * self.on + self.off_rate * self.off
        if expected < MIN_BURST_ARRIVALS:
            raise ValueError(
                f"on_rate*on + off_rate*off = {expected:.3g} arrivals per cycle; it must be >= "
                f"{MIN_BURST_ARRIVALS} (for rarer arrivals use process: poisson)"
            )
        return self

    def iter_times(self, count: int, rng: random.Random) -> Iterator[float]:
        made = 0
        t, phase_on, phase_end = 0.0, True, self.on
        while made < count:
            rate = self.on_rate if phase_on else self.off_rate
            if rate > 0:
                candidate = t + rng.expovariate(rate)
                if candidate < phase_end:
                    made += 1
                    yield candidate
                    t = candidate
                    continue
            t, phase_on = phase_end, not phase_on
            phase_end = t + (self.on if phase_on else self.off)


class DiurnalArrival(_Process):
    """A sinusoidal Poisson process, `rate * (1 + amplitude * sin(2*pi*t / period))`, by thinning.

    `rate` is the mean rate; candidates come at the peak rate `rate * (1 + amplitude)` and each is
    kept with probability (rate at that instant) / (peak rate).
    """

    process: Literal["diurnal"]
    rate: float = Field(ge=MIN_RATE, le=MAX_RATE)
    amplitude: float = Field(ge=0, le=1)
    period: float = Field(ge=MIN_PERIOD, le=MAX_SECONDS)

    def rate_at(self, t: float) -> float:
        """The instantaneous arrival rate at time `t`."""
        return self.rate * (1.0 + self.amplitude * math.sin(2.0 * math.pi * t / self.period))

    def iter_times(self, count: int, rng: random.Random) -> Iterator[float]:
        made = 0
        peak = self.rate * (1.0 + self.amplitude)
        t = 0.0
        while made < count:
            t += rng.expovariate(peak)
            if rng.random() * peak <= self.rate_at(t):
                made += 1
                yield t


class TraceArrival(_Process):
    """Arrival times replayed from a JSONL file (path relative to the workload file).

    Each line is a number or an object with an `arrival` key; the first `tasks.count` lines are
    used, in file order. The loader reads the file; see `swarmbalancer.workload.trace`.
    """

    process: Literal["trace"]
    file: str = Field(min_length=1)
    _times: list[float] | None = PrivateAttr(default=None)

    ordered: ClassVar[bool] = False

    def attach(self, times: list[float]) -> None:
        """Store the arrival times read from `file` (called once by the loader)."""
        self._times = times

    @property
    def loaded(self) -> list[float] | None:
        """The arrival times read from `file`, or None before the loader has read it."""
        return self._times

    def times(self, count: int, rng: random.Random) -> list[float]:
        if self._times is None:
            raise WorkloadError(
                "tasks.arrival.file: trace not read; build the workload with load_workload() "
                "or parse_workload()"
            )
        if len(self._times) < count:
            raise WorkloadError(
                f"tasks.arrival.file: {self.file} has {len(self._times)} arrivals, "
                f"tasks.count asks for {count}"
            )
        return self._times[:count]

    def iter_times(self, count: int, rng: random.Random) -> Iterator[float]:
        return iter(self.times(count, rng))


Arrival = Annotated[
    BatchArrival | PoissonArrival | BurstyArrival | DiurnalArrival | TraceArrival,
    Field(discriminator="process"),
]
