"""Arrival processes of generated tasks, discriminated by `process`.

Each model turns a task count and a `random.Random` into non-decreasing arrival times in seconds
since the start of the run (workload time 0).
"""

from __future__ import annotations

import math
import random
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from swarmbalancer.errors import WorkloadError


class _Process(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class BatchArrival(_Process):
    """Every task arrives at the same instant `at`."""

    process: Literal["batch"]
    at: float = Field(default=0.0, ge=0)

    def times(self, count: int, rng: random.Random) -> list[float]:
        return [self.at] * count


class PoissonArrival(_Process):
    """A Poisson process of `rate` arrivals per second: exponential gaps of mean 1/rate."""

    process: Literal["poisson"]
    rate: float = Field(gt=0)

    def times(self, count: int, rng: random.Random) -> list[float]:
        out: list[float] = []
        t = 0.0
        for _ in range(count):
            t += rng.expovariate(self.rate)
            out.append(t)
        return out


class BurstyArrival(_Process):
    """An on/off modulated Poisson process that starts in the on phase at time 0.

    Phases alternate: `on` seconds at `on_rate` arrivals per second, then `off` seconds at
    `off_rate` (0 means silence). Gaps are redrawn at each phase boundary (memorylessness).
    """

    process: Literal["bursty"]
    on_rate: float = Field(gt=0)
    off_rate: float = Field(default=0.0, ge=0)
    on: float = Field(gt=0)
    off: float = Field(gt=0)

    def times(self, count: int, rng: random.Random) -> list[float]:
        out: list[float] = []
        t, phase_on, phase_end = 0.0, True, self.on
        while len(out) < count:
            rate = self.on_rate if phase_on else self.off_rate
            if rate > 0:
                candidate = t + rng.expovariate(rate)
                if candidate < phase_end:
                    out.append(candidate)
                    t = candidate
                    continue
            t, phase_on = phase_end, not phase_on
            phase_end = t + (self.on if phase_on else self.off)
        return out


class DiurnalArrival(_Process):
    """A sinusoidal Poisson process, `rate * (1 + amplitude * sin(2*pi*t / period))`, by thinning.

    `rate` is the mean rate; candidates come at the peak rate `rate * (1 + amplitude)` and each is
    kept with probability (rate at that instant) / (peak rate).
    """

    process: Literal["diurnal"]
    rate: float = Field(gt=0)
    amplitude: float = Field(ge=0, le=1)
    period: float = Field(gt=0)

    def rate_at(self, t: float) -> float:
        """The instantaneous arrival rate at time `t`."""
        return self.rate * (1.0 + self.amplitude * math.sin(2.0 * math.pi * t / self.period))

    def times(self, count: int, rng: random.Random) -> list[float]:
        out: list[float] = []
        peak = self.rate * (1.0 + self.amplitude)
        t = 0.0
        while len(out) < count:
            t += rng.expovariate(peak)
            if rng.random() * peak <= self.rate_at(t):
                out.append(t)
        return out


class TraceArrival(_Process):
    """Arrival times replayed from a JSONL file (path relative to the workload file).

    Each line is a number or an object with an `arrival` key; the first `tasks.count` lines are
    used, in file order. The loader reads the file; see `swarmbalancer.workload.trace`.
    """

    process: Literal["trace"]
    file: str = Field(min_length=1)
    _times: list[float] | None = PrivateAttr(default=None)

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


Arrival = Annotated[
    BatchArrival | PoissonArrival | BurstyArrival | DiurnalArrival | TraceArrival,
    Field(discriminator="process"),
]
