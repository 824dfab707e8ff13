"""What a simulation looked like over time, for plots: per-agent load sampled at fixed virtual-time
steps, and the distribution of sojourn times.

Both only read state (the sampler is an extra event that changes nothing), so attaching them leaves
every decision and the report of the run bit for bit the same. Memory is bounded: at most
`max_samples` load samples (the step doubles and every other sample is dropped when they would be
more) and a fixed number of histogram bins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from swarmbalancer.model import Task
from swarmbalancer.sim.driver import SimDriver


@dataclass(slots=True)
class LogHistogram:
    """Counts of positive values in logarithmic bins from `low` to `high` seconds (`per_decade`
    bins a decade); values outside land in the first or last bin."""

    low: float = 1e-6
    high: float = 1e5
    per_decade: int = 100
    counts: list[int] = field(default_factory=list)
    total: int = 0

    def __post_init__(self) -> None:
        bins = math.ceil(math.log10(self.high / self.low) * self.per_decade)
        self.counts = [0] * bins

    def add(self, value: float) -> None:
        """Count one value."""
        last = len(self.counts) - 1
        if value <= self.low:
            index = 0
        else:
            index = min(last, int(math.log10(value / self.low) * self.per_decade))
        self.counts[index] += 1
        self.total += 1

    def edge(self, index: int) -> float:
        """The upper edge of bin `index`."""
        return float(self.low * 10 ** ((index + 1) / self.per_decade))

    def cdf(self) -> tuple[list[float], list[float]]:
        """Upper bin edges and the share of values at or below each, over the occupied bins."""
        occupied = [i for i, n in enumerate(self.counts) if n]
        if not occupied:
            return [], []
        edges: list[float] = []
        shares: list[float] = []
        seen = 0
        for i in range(occupied[0], occupied[-1] + 1):
            seen += self.counts[i]
            edges.append(self.edge(i))
            shares.append(seen / self.total)
        return edges, shares


class Timeline:
    """Per-agent load (queued + in flight) every `step` seconds of virtual time, and sojourns.

    `times[k]` is the k-th sample time and `loads[agent][k]` that agent's load then (0 while it is
    absent). The last sample is taken when the run ends, the others on the grid `k * step`.
    """

    def __init__(self, max_samples: int = 500, first_step: float = 0.001) -> None:
        if max_samples < 2:
            raise ValueError(f"max_samples: must be >= 2, got {max_samples}")
        if first_step <= 0:
            raise ValueError(f"first_step: must be > 0, got {first_step}")
        self.max_samples = max_samples
        self.step = first_step
        self.times: list[float] = []
        self.loads: dict[str, list[int]] = {}
        self.sojourn = LogHistogram()
        self._driver: SimDriver | None = None
        self._origin = 0.0

    def attach(self, driver: SimDriver) -> None:
        """Sample `driver`'s agents from its current time on, and record its finished tasks."""
        self._driver = driver
        self._origin = driver.loop.now
        driver.on_finish = self._finished
        driver.loop.at(self._origin, self._sample)

    def finish(self) -> None:
        """Take the closing sample at the time the run ended."""
        if self._driver is not None:
            self._record(self._driver)

    def _finished(self, task: Task, now: float) -> None:
        self.sojourn.add(now - task.submitted_at)

    def _sample(self) -> None:
        driver = self._driver
        assert driver is not None
        self._record(driver)
        if len(self.times) > self.max_samples:
            self.times = self.times[::2]
            self.loads = {agent: series[::2] for agent, series in self.loads.items()}
            self.step *= 2
        if len(driver.loop):  # something else is still to happen: keep sampling
            driver.loop.at(self._origin + len(self.times) * self.step, self._sample)

    def _record(self, driver: SimDriver) -> None:
        k = len(self.times)
        loads = self.loads
        for agent in driver.coord.store.agents():
            series = loads.get(agent.id)
            if series is None:
                series = loads[agent.id] = [0] * k
            series.append(agent.queued + agent.in_flight)
        self.times.append(driver.loop.now)
        for series in loads.values():
            if len(series) == k:  # the agent has left
                series.append(0)
