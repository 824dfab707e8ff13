"""The adaptive router: learns each agent's speed and error rate online and picks the agent with
the best expected outcome for this task.

For a task of expected work `w` on agent `i` with learned speed `s_i` (work units per second),
capacity `c_i`, booked backlog `B_i` and learned error rate `e_i`:

    ect_i  = (B_i / c_i + w) / s_i   if the agent has no free slot, else  w / s_i
    time_i = ect_i / (1 - e_i)       (expected attempts until success, geometric)

With only the latency objective (the default) the agent of least `time_i` wins. With several
objectives each term is divided by its mean over the candidates, so the weights are unitless:

    score_i = W_lat*time_i + W_util*busy_i + W_bal*|load_i' - mean load'| + W_cost*cost_i*w

`busy_i` is 1 when the agent has no free slot (filling idle slots raises utilization),
`load_i'` the load after placing the task. With probability `exploration` the idle candidate
observed least recently wins instead, so a new or recovered agent gets measured; exploring only
on idle capacity costs no queueing delay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from swarmbalancer.config import ObjectiveWeights
from swarmbalancer.model import AgentState, AgentStats, Task
from swarmbalancer.policies.routing import Router, RoutingContext

_MAX_ERROR = 0.95


def observe(
    stats: AgentStats,
    *,
    alpha: float,
    now: float,
    ok: bool,
    work: float | None,
    duration: float | None,
) -> None:
    """Fold one finished attempt into an agent's exponentially weighted estimates.

    Speed is a ratio estimator: weighted mean work over weighted mean duration. The prior speed
    enters as if the earlier attempts had this one's work at that speed, so one noisy first
    sample moves the estimate by `alpha`, not all the way.
    """
    stats.error_rate += alpha * ((0.0 if ok else 1.0) - stats.error_rate)
    if ok and work is not None and work > 0 and duration is not None and duration > 0:
        if stats.work_avg is None or stats.time_avg is None:
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
    ) -> None:
        self.weights = weights or ObjectiveWeights()
        self.exploration = exploration
        self.max_candidates = max_candidates
        w = self.weights
        self._latency_only = w.utilization == 0 and w.balance == 0 and w.cost == 0

    def choose(
        self, task: Task, candidates: Sequence[AgentState], ctx: RoutingContext
    ) -> AgentState:
        n = len(candidates)
        if n > self.max_candidates:
            # k draws with replacement, in draw order (ties go to the first drawn, so to a
            # seeded-random one): far cheaper than random.sample for large swarms
            draw = ctx.rng.random
            candidates = [candidates[int(draw() * n)] for _ in range(self.max_candidates)]
        if self.exploration > 0 and len(candidates) > 1 and ctx.rng.random() < self.exploration:
            idle = [a for a in candidates if a.free_slots > 0 and a.queued == 0]
            if idle:
                return min(idle, key=_staleness)
        work = ctx.work_of(task)
        if self._latency_only:
            return _fastest(candidates, work, ctx)
        return self._multi_objective(candidates, work, ctx)

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


def expected_time(agent: AgentState, work: float, ctx: RoutingContext) -> float:
    """Expected seconds until `work` would be done on `agent`, counting retries for errors."""
    speed = agent.stats.speed * ctx.ramp(agent)
    if agent.queued + agent.in_flight >= agent.spec.capacity:
        ect = (agent.backlog / agent.spec.capacity + work) / speed
    else:
        ect = work / speed
    return ect / (1.0 - min(agent.stats.error_rate, _MAX_ERROR))


def _fastest(candidates: Sequence[AgentState], work: float, ctx: RoutingContext) -> AgentState:
    """The candidate of least `expected_time` (first on ties): that function, inlined for speed."""
    best = candidates[0]
    best_time = math.inf
    for agent in candidates:
        stats = agent.stats
        speed = stats.speed if agent.ramp_from is None else stats.speed * ctx.ramp(agent)
        capacity = agent.spec.capacity
        if agent.queued + agent.in_flight >= capacity:
            time = (agent.backlog / capacity + work) / speed
        else:
            time = work / speed
        error = stats.error_rate
        if error:  # x / (1 - 0) is x: skipping it changes no bit
            time /= 1.0 - (error if error < _MAX_ERROR else _MAX_ERROR)
        if time < best_time:
            best, best_time = agent, time
    return best


def _staleness(agent: AgentState) -> tuple[float, int]:
    last = agent.stats.last_observed
    return (-math.inf if last is None else last, agent.stats.samples)
