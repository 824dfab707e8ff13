"""Synthetic agents that execute a workload's tasks in real time on an asyncio loop.

An attempt of work `w` on an agent of speed `s` lasts `w / s`, times the fault slowdown at its
start, and fails (at its end) with the fault error rate. `attempt_outcome` decides both, from a
random stream seeded by (workload seed, task id, attempt) only, so the real-time swarm and the
discrete-event simulator agree exactly and results never depend on scheduling order.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from swarmbalancer.model import AgentSpec, Task
from swarmbalancer.workload.faults import FaultPlan
from swarmbalancer.workload.schema import Workload
from swarmbalancer.workload.seeding import derived_rng

#: A dispatch this much later than the slot became free still starts at the slot's free time.
DEFAULT_CONTINUITY = 0.005


class SyntheticFailure(Exception):
    """An injected failure of one attempt (a fault's error rate, or the agent being down)."""

    def __init__(self, agent_id: str, task_id: str, attempt: int, reason: str) -> None:
        super().__init__(reason)
        self.agent_id = agent_id
        self.task_id = task_id
        self.attempt = attempt
        self.reason = reason


@dataclass(slots=True, frozen=True)
class AttemptOutcome:
    """How long an attempt lasts (seconds) and whether it fails; `reason` says why it failed."""

    duration: float
    failed: bool
    reason: str | None = None


@dataclass(slots=True, frozen=True)
class SyntheticResult:
    """What a successful synthetic attempt returns; times are workload seconds."""

    agent_id: str
    task_id: str
    attempt: int
    work: float
    start: float
    end: float


def attempt_outcome(
    *,
    seed: int,
    task_id: str,
    attempt: int,
    agent_id: str,
    speed: float,
    work: float,
    start: float,
    faults: FaultPlan,
) -> AttemptOutcome:
    """Duration and failure of one attempt starting at workload time `start`: a pure function.

    A down agent fails at once (duration 0). Otherwise the attempt lasts
    `work / speed * slowdown` and fails with probability `error_rate`, drawn from a stream seeded
    by (seed, task id, attempt); faults are those in force at `start`.
    """
    effect = faults.at(agent_id, start)
    if effect.down:
        return AttemptOutcome(0.0, True, f"agent {agent_id} is down")
    duration = work / speed * effect.slowdown
    rate = effect.error_rate
    if rate > 0 and (rate >= 1 or derived_rng(seed, "attempt", task_id, attempt).random() < rate):
        return AttemptOutcome(duration, True, f"injected failure on {agent_id}")
    return AttemptOutcome(duration, False)


def payload_work(task: Task) -> float:
    """The work of a synthetic task: `task.payload` must be a mapping with a number `"work"`."""
    payload = task.payload
    work = payload.get("work") if isinstance(payload, dict) else None
    if isinstance(work, bool) or not isinstance(work, int | float) or not math.isfinite(work):
        raise ValueError(
            f"task {task.id}: a synthetic agent needs payload {{'work': seconds at speed 1}}, "
            f"got {payload!r}"
        )
    if work < 0:
        raise ValueError(f"task {task.id}: payload work must be >= 0, got {work}")
    return float(work)


class SyntheticAgent:
    """One synthetic agent: `capacity` slots, each a timeline of when it is next free.

    A dispatch that arrives within `continuity` seconds of its slot becoming free starts at the
    free time, as if the agent had never idled (the dispatcher was merely late); a later one starts
    now. Each attempt sleeps until its absolute end, so timer granularity never accumulates and the
    agent holds its speed over a busy period.
    """

    def __init__(
        self, spec: AgentSpec, *, speed: float, seed: int, faults: FaultPlan, continuity: float
    ) -> None:
        self.spec = spec
        self.speed = speed  # the true speed, which the balancer is never told
        self.seed = seed
        self.faults = faults
        self.continuity = continuity
        self.attempts = 0
        self.failures = 0
        self._free: list[float] = [-math.inf] * spec.capacity  # min-heap of slot free times

    def outcome(self, task: Task, start: float) -> AttemptOutcome:
        """The outcome of `task`'s current attempt starting at workload time `start` here."""
        return attempt_outcome(
            seed=self.seed,
            task_id=task.id,
            attempt=task.attempt,
            agent_id=self.spec.id,
            speed=self.speed,
            work=payload_work(task),
            start=start,
            faults=self.faults,
        )

    async def run(self, task: Task, origin: float) -> SyntheticResult:
        """Execute one attempt of `task`; workload time 0 is loop time `origin`."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        work = payload_work(task)
        self.attempts += 1
        free = self._free[0]
        start = free if free > now or now - free <= self.continuity else now
        outcome = self.outcome(task, start - origin)
        if outcome.failed and outcome.duration == 0.0:
            self.failures += 1
            raise SyntheticFailure(self.spec.id, task.id, task.attempt, outcome.reason or "down")
        end = start + outcome.duration
        heapq.heapreplace(self._free, end)
        try:
            await asyncio.sleep(max(0.0, end - loop.time()))
        except asyncio.CancelledError:
            self._release(end, loop.time())
            raise
        if outcome.failed:
            self.failures += 1
            raise SyntheticFailure(self.spec.id, task.id, task.attempt, outcome.reason or "failed")
        return SyntheticResult(
            self.spec.id, task.id, task.attempt, work, start - origin, end - origin
        )

    def _release(self, end: float, now: float) -> None:
        """A cancelled attempt frees its slot now instead of at its planned end."""
        if end in self._free and now < end:
            self._free[self._free.index(end)] = now
            heapq.heapify(self._free)


SyntheticHandler = Callable[[Task], Awaitable[SyntheticResult]]


class SyntheticSwarm:
    """The synthetic agents of a workload, handing out one async handler per agent.

    Handlers read the work from `task.payload["work"]` (seconds at speed 1) and time everything by
    `loop.time()`. Fault windows are in workload time, which starts at loop time `origin`: the
    running loop's time when the swarm is built inside one, else the first attempt; call `start`
    to align it exactly with the moment the driver starts submitting.
    """

    def __init__(
        self,
        workload: Workload,
        *,
        continuity: float = DEFAULT_CONTINUITY,
        origin: float | None = None,
    ) -> None:
        if continuity < 0:
            raise ValueError(f"continuity: must be >= 0, got {continuity}")
        self.workload = workload
        self.faults = FaultPlan.from_workload(workload)
        speeds = workload.agent_speeds()
        self.agents: dict[str, SyntheticAgent] = {
            spec.id: SyntheticAgent(
                spec,
                speed=speeds[spec.id],
                seed=workload.seed,
                faults=self.faults,
                continuity=continuity,
            )
            for spec in workload.agent_specs()
        }
        if origin is None:
            try:
                origin = asyncio.get_running_loop().time()
            except RuntimeError:
                origin = None
        self._origin = origin

    @property
    def origin(self) -> float | None:
        """Loop time of workload time 0, or None until it is known."""
        return self._origin

    def start(self, origin: float | None = None) -> None:
        """Set workload time 0 to loop time `origin` (default: now on the running loop)."""
        self._origin = asyncio.get_running_loop().time() if origin is None else origin

    def agent(self, agent_id: str) -> SyntheticAgent:
        """The synthetic agent of that id; a `KeyError` names an unknown id."""
        try:
            return self.agents[agent_id]
        except KeyError:
            raise KeyError(f"no synthetic agent named {agent_id!r}") from None

    def outcome(self, task: Task, agent_id: str, start: float) -> AttemptOutcome:
        """The outcome of `task`'s current attempt on `agent_id` from workload time `start`.

        The discrete-event simulator calls this; the real-time handlers use the same function.
        """
        return self.agent(agent_id).outcome(task, start)

    def handler_for(self, agent_id: str) -> SyntheticHandler:
        """An async handler that runs each task on the synthetic agent `agent_id`."""
        agent = self.agent(agent_id)

        async def handle(task: Task) -> SyntheticResult:
            if self._origin is None:
                self._origin = asyncio.get_running_loop().time()
            return await agent.run(task, self._origin)

        return handle
