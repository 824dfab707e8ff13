"""The adaptive router: learns each agent's speed and error rate online and gives each task to the
agent expected to finish it first.

For a task of expected work `w` on agent `i` with learned speed `s_i` (work units per second),
capacity `c_i` and learned error rate `e_i`:

    ect_i  = w / s_i                       if a slot is free for it (held < c_i)
    ect_i  = wait_i + w / s_i              otherwise
    wait_i = (queued work + work left of the running tasks) / (c_i * s_i)
    time_i = ect_i / (1 - e_i)             (expected attempts until success, geometric)

The work left of the running tasks is their booked work less what the agent has done since they
started, `run_work - s_i * (in_flight * now - run_started)`. Once that turns negative the tasks
overran their estimate, and the overrun itself is taken as the work still left (the longer a task
has overrun, the longer it is expected to go on): a stuck agent looks ever busier, never free.

Under late binding (`place`) an agent with room asks for the shared queue's next task, and the
task goes to the agent of least `time_i`: the asker, another agent with room, or a busy agent
that is expected to finish it sooner than any of them even after its current work (a
reservation: a long task near the end of a burst waits for the fast agent rather than go to a
slow idle one). An agent holds at most `capacity x (1 + prefetch + RESERVE_PER_SLOT)` tasks, and
an idle agent takes back a reserved task it would finish sooner (`plan_rescue` in stealing.py),
so a wrong estimate cannot strand work behind a busy agent.

With only the latency objective (the default) the agent of least `time_i` wins. With several
objectives each term is divided by its mean over the candidates, so the weights are unitless:

    score_i = W_lat*time_i + W_util*busy_i + W_bal*|load_i' - mean load'| + W_cost*cost_i*w

`busy_i` is 1 when the agent has no free slot (filling idle slots raises utilization),
`load_i'` the load after placing the task. With probability `exploration` an idle candidate
observed least recently wins instead (the asker, under late binding), so a new or recovered agent
gets measured; exploring only on idle capacity costs no queueing delay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from swarmbalancer.config import ObjectiveWeights
from swarmbalancer.model import AgentState, AgentStats, Task
from swarmbalancer.policies.routing import Router, RoutingContext

MAX_ERROR = 0.95

#: Tasks a busy agent may hold per slot by reservation, beyond its `prefetch`.
RESERVE_PER_SLOT = 2


def holding_limit(agent: AgentState, prefetch: int) -> int:
    """The most tasks (running and bound) late binding lets `agent` hold."""
    return agent.spec.capacity * (1 + prefetch + RESERVE_PER_SLOT)


def observe(
    stats: AgentStats,
    alpha: float,
    now: float,
    ok: bool,
    work: float | None,
    duration: float | None,
) -> None:
    """Fold one finished attempt into an agent's exponentially weighted estimates.

    Speed is a ratio estimator: weighted mean work over weighted mean duration. A declared speed
    (`hinted`) enters as if the earlier attempts had this one's work at that speed, so one noisy
    first sample moves the estimate by `alpha`; the neutral prior of an undeclared speed is
    replaced by the first sample outright.
    """
    if not ok:
        stats.error_rate += alpha * (1.0 - stats.error_rate)
    elif stats.error_rate:  # the same step towards 0.0, skipped where it would leave 0.0 as is
        stats.error_rate -= alpha * stats.error_rate
    if ok and work is not None and work > 0 and duration is not None and duration > 0:
        if stats.work_avg is None or stats.time_avg is None:
            if not stats.hinted:
                stats.work_avg, stats.time_avg = work, duration
                stats.speed = work / duration
                stats.samples += 1
                stats.last_observed = now
                return
            stats.work_avg, stats.time_avg = work, work / stats.speed
        stats.work_avg += alpha * (work - stats.work_avg)
        stats.time_avg += alpha * (duration - stats.time_avg)
        stats.speed = stats.work_avg / stats.time_avg
    stats.samples += 1
    stats.last_observed = now


class Adaptive(Router):
    """Least expected completion time, optionally traded against utilization, balance and cost."""

    name = "adaptive"

    def __init__(
        self,
        weights: ObjectiveWeights | None = None,
        *,
        exploration: float = 0.02,
        max_candidates: int = 64,
        prefetch: int = 0,
    ) -> None:
        self.weights = weights or ObjectiveWeights()
        self.exploration = exploration
        self.max_candidates = max_candidates
        self.prefetch = prefetch
        w = self.weights
        self._latency_only = w.utilization == 0 and w.balance == 0 and w.cost == 0

    @property
    def latency_only(self) -> bool:
        """Is expected finish time the only objective (the default)?"""
        return self._latency_only

    def choose(
        self, task: Task, candidates: Sequence[AgentState], ctx: RoutingContext
    ) -> AgentState:
        candidates = self._sample(candidates, ctx)
        if self.exploration > 0 and len(candidates) > 1 and ctx.rng.random() < self.exploration:
            idle = [a for a in candidates if a.free_slots > 0 and a.queued == 0]
            if idle:
                return min(idle, key=_staleness)
        work = ctx.work_of(task)
        if self._latency_only:
            return _fastest(candidates, work, ctx, None, math.inf)
        return self._multi_objective(candidates, work, ctx)

    def place(
        self,
        task: Task,
        asker: AgentState,
        candidates: Sequence[AgentState],
        ctx: RoutingContext,
    ) -> AgentState:
        """Late binding: the agent `task` should be bound to, now that `asker` has room for it.

        `candidates` are the agents allowed to run it (the asker among them or not); an agent
        without room qualifies only as a reservation, within its limit.
        """
        candidates = self._sample(candidates, ctx)
        if self.exploration > 0 and ctx.rng.random() < self.exploration:
            return asker
        slots = 1 + self.prefetch + RESERVE_PER_SLOT
        work = ctx.work_of(task)
        if self._latency_only:
            return _fastest(candidates, work, ctx, asker, expected_time(asker, work, ctx), slots)
        eligible = [
            a
            for a in candidates
            if a is not asker and a.in_flight + a.queued < a.spec.capacity * slots
        ]
        return self._multi_objective([asker, *eligible], work, ctx)

    def best(self, task: Task, candidates: Sequence[AgentState], ctx: RoutingContext) -> AgentState:
        """The candidate expected to finish `task` first, whatever it already holds."""
        work = ctx.work_of(task)
        if self._latency_only:
            return _fastest(self._sample(candidates, ctx), work, ctx, None, math.inf)
        return self._multi_objective(self._sample(candidates, ctx), work, ctx)

    def _sample(
        self, candidates: Sequence[AgentState], ctx: RoutingContext
    ) -> Sequence[AgentState]:
        n = len(candidates)
        if n <= self.max_candidates:
            return candidates
        # k draws with replacement, in draw order (ties go to the first drawn, so to a
        # seeded-random one): far cheaper than random.sample for large swarms
        draw = ctx.rng.random
        return [candidates[int(draw() * n)] for _ in range(self.max_candidates)]

    def _multi_objective(
        self, candidates: Sequence[AgentState], work: float, ctx: RoutingContext
    ) -> AgentState:
        w = self.weights
        times = [expected_time(a, work, ctx) for a in candidates]
        busy = [0.0 if a.free_slots > 0 else 1.0 for a in candidates]
        loads = [(a.queued + a.in_flight) / a.spec.capacity for a in candidates]
        mean_load = sum(loads) / len(loads)
        balance = [
            abs(load + 1.0 / a.spec.capacity - mean_load)
            for a, load in zip(candidates, loads, strict=True)
        ]
        cost = [a.spec.cost * work for a in candidates]
        terms = ((w.latency, times), (w.utilization, busy), (w.balance, balance), (w.cost, cost))
        scores = [0.0] * len(candidates)
        for weight, values in terms:
            if weight == 0:
                continue
            mean = sum(values) / len(values)
            if mean <= 0:
                continue
            scale = weight / mean
            for i, value in enumerate(values):
                scores[i] += scale * value
        best = min(range(len(candidates)), key=scores.__getitem__)
        return candidates[best]


def work_left(agent: AgentState, speed: float, now: float) -> float:
    """Booked work of the agent's running tasks less what it has done on them at `speed`;
    negative once they overran their estimates."""
    return agent.run_work - speed * (agent.in_flight * now - agent.run_started)


def wait_time(agent: AgentState, speed: float, now: float) -> float:
    """Expected seconds until a slot of `agent` is free for one more task (0 with a free slot)."""
    capacity = agent.spec.capacity
    if agent.queued + agent.in_flight < capacity:
        return 0.0
    left = work_left(agent, speed, now)
    queued_work = agent.backlog - agent.run_work
    return ((left if left > 0.0 else -left) + queued_work) / (capacity * speed)


def expected_time(agent: AgentState, work: float, ctx: RoutingContext) -> float:
    """Expected seconds until `work` would be done on `agent`, counting retries for errors."""
    speed = agent.stats.speed * ctx.ramp(agent)
    ect = wait_time(agent, speed, ctx.now) + work / speed
    return ect / (1.0 - min(agent.stats.error_rate, MAX_ERROR))


def _fastest(
    candidates: Sequence[AgentState],
    work: float,
    ctx: RoutingContext,
    best: AgentState | None,
    best_time: float,
    slots: int = 0,
) -> AgentState:
    """The candidate of least `expected_time`, or `best` unless one beats `best_time` (first on
    ties): that function (and `work_left`), inlined for speed. With `slots`, agents holding
    `capacity x slots` tasks or more are passed over."""
    now = ctx.now
    for agent in candidates:
        capacity = agent.spec.capacity
        in_flight = agent.in_flight
        held = agent.queued + in_flight
        if slots and (held >= capacity * slots or agent is best):
            continue
        stats = agent.stats
        speed = stats.speed if agent.ramp_from is None else stats.speed * ctx.ramp(agent)
        if held >= capacity:
            left = agent.run_work - speed * (in_flight * now - agent.run_started)
            queued_work = agent.backlog - agent.run_work
            time = ((left if left > 0.0 else -left) + queued_work) / (capacity * speed)
            time += work / speed
        else:
            time = work / speed
        error = stats.error_rate
        if error:  # x / (1 - 0) is x: skipping it changes no bit
            time /= 1.0 - (error if error < MAX_ERROR else MAX_ERROR)
        if time < best_time:
            best, best_time = agent, time
    assert best is not None
    return best


def _staleness(agent: AgentState) -> tuple[float, int]:
    last = agent.stats.last_observed
    return (-math.inf if last is None else last, agent.stats.samples)
