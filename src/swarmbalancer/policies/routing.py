"""Routing strategies: which agent a new task is queued at.

Each router is a small object with `choose(task, candidates, ctx)`. Candidates arrive already
filtered (breaker, affinity, draining) and in registration order; a router only ranks them.
Routers may keep their own decision state (a cursor, smooth-weighted counters) but read no clock
and no global randomness: time and the seeded RNG come in through `RoutingContext`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from swarmbalancer.model import AgentState, Task


@dataclass(slots=True)
class RoutingContext:
    """What a router may know besides the candidates: time, randomness and shared estimates."""

    now: float
    rng: random.Random
    slow_start: float = 0.0
    threshold: float = 0.8
    unit_work: float = 1.0

    def ramp(self, agent: AgentState) -> float:
        """Slow-start share in (0, 1]: a new or recovered agent's share grows linearly to 1."""
        start = agent.ramp_from
        if start is None or self.slow_start <= 0:
            return 1.0
        return min(1.0, max(0.1, (self.now - start) / self.slow_start))

    def work_of(self, task: Task) -> float:
        """Expected work of a task: its estimate, else the learned mean of unestimated tasks."""
        return task.estimate if task.estimate is not None else self.unit_work


class Router(ABC):
    """A routing strategy; `name` is what users write in `strategy`.

    `late` routers look at load, so the coordinator asks them when an agent has room (late
    binding, from the shared queue); the oblivious ones (round robin, weighted, random) decide at
    submit by definition, and their tasks queue at the chosen agent at once.
    """

    name: str = ""
    late: bool = True

    @abstractmethod
    def choose(
        self, task: Task, candidates: Sequence[AgentState], ctx: RoutingContext
    ) -> AgentState:
        """Pick one of `candidates` (never empty) for `task`."""

    def forget(self, agent_id: str) -> None:  # noqa: B027 - optional hook
        """Drop any state kept for an agent that left."""


class RoundRobin(Router):
    """Each candidate in turn, oblivious of load: the baseline for uniform tasks."""

    name = "round_robin"
    late = False

    def __init__(self) -> None:
        self._turn = 0

    def choose(
        self, task: Task, candidates: Sequence[AgentState], ctx: RoutingContext
    ) -> AgentState:
        agent = candidates[self._turn % len(candidates)]
        self._turn += 1
        return agent


class SmoothWeighted(Router):
    """Smooth weighted round robin (nginx): shares follow weights, picks are evenly interleaved."""

    name = "weighted"
    late = False

    def __init__(self) -> None:
        self._current: dict[str, float] = {}

    def choose(
        self, task: Task, candidates: Sequence[AgentState], ctx: RoutingContext
    ) -> AgentState:
        current = self._current
        total = 0.0
        best: AgentState | None = None
        best_value = 0.0
        for agent in candidates:
            weight = agent.spec.weight * ctx.ramp(agent)
            total += weight
            value = current.get(agent.id, 0.0) + weight
            current[agent.id] = value
            if best is None or value > best_value:
                best, best_value = agent, value
        assert best is not None
        current[best.id] = best_value - total
        return best

    def forget(self, agent_id: str) -> None:
        self._current.pop(agent_id, None)


def _load(agent: AgentState, ctx: RoutingContext) -> float:
    return (agent.queued + agent.in_flight) / (agent.spec.capacity * ctx.ramp(agent))


class LeastConnections(Router):
    """The candidate with the least queued plus in-flight tasks per unit of capacity."""

    name = "least_connections"

    def choose(
        self, task: Task, candidates: Sequence[AgentState], ctx: RoutingContext
    ) -> AgentState:
        return min(candidates, key=lambda a: _load(a, ctx))


class PowerOfTwo(Router):
    """Two candidates drawn at random, the less loaded wins (Mitzenmacher's two choices)."""

    name = "power_of_two"

    def choose(
        self, task: Task, candidates: Sequence[AgentState], ctx: RoutingContext
    ) -> AgentState:
        if len(candidates) == 1:
            return candidates[0]
        a, b = ctx.rng.sample(range(len(candidates)), 2)
        first, second = candidates[min(a, b)], candidates[max(a, b)]
        return first if _load(first, ctx) <= _load(second, ctx) else second


class RandomChoice(Router):
    """A uniformly random candidate from the seeded RNG."""

    name = "random"
    late = False

    def choose(
        self, task: Task, candidates: Sequence[AgentState], ctx: RoutingContext
    ) -> AgentState:
        return candidates[ctx.rng.randrange(len(candidates))]


class Locality(Router):
    """Same region first: the least loaded agent in the task's region unless all there exceed
    `threshold` load; otherwise, or without a region, the least loaded agent anywhere."""

    name = "locality"

    def choose(
        self, task: Task, candidates: Sequence[AgentState], ctx: RoutingContext
    ) -> AgentState:
        if task.region is not None:
            local = [a for a in candidates if a.spec.region == task.region]
            if local:
                best = min(local, key=lambda a: _load(a, ctx))
                if _load(best, ctx) < ctx.threshold:
                    return best
        return min(candidates, key=lambda a: _load(a, ctx))
