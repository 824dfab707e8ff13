"""Routing strategies: each ranks the candidates it is given, deterministically for a seed."""

from __future__ import annotations

import math
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmbalancer.config import BalancerConfig, ObjectiveWeights
from swarmbalancer.model import AgentSpec, AgentState, AgentStats, Task
from swarmbalancer.policies.adaptive import Adaptive, _fastest, expected_time, observe
from swarmbalancer.policies.factory import make_router
from swarmbalancer.policies.routing import (
    LeastConnections,
    Locality,
    PowerOfTwo,
    RoundRobin,
    RoutingContext,
    SmoothWeighted,
)


def agent(
    i: int,
    *,
    speed: float = 1.0,
    capacity: int = 1,
    weight: float = 1.0,
    region: str | None = None,
    cost: float = 0.0,
) -> AgentState:
    spec = AgentSpec(
        f"a{i}", capacity=capacity, speed_hint=speed, weight=weight, region=region, cost=cost
    )
    return AgentState(spec=spec, stats=AgentStats(speed=speed))


def ctx(seed: int = 0) -> RoutingContext:
    return RoutingContext(now=0.0, rng=random.Random(seed))


def task(estimate: float | None = 1.0, region: str | None = None) -> Task:
    return Task.create(None, now=0.0, estimate=estimate, region=region)


def test_round_robin_visits_every_candidate_in_turn() -> None:
    agents = [agent(i) for i in range(3)]
    r = RoundRobin()
    assert [r.choose(task(), agents, ctx()).id for _ in range(6)] == ["a0", "a1", "a2"] * 2


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 10), min_size=1, max_size=6))
def test_smooth_weighted_shares_follow_weights_exactly_over_a_full_cycle(
    weights: list[int],
) -> None:
    agents = [agent(i, weight=float(w)) for i, w in enumerate(weights)]
    r = SmoothWeighted()
    picks = Counter(r.choose(task(), agents, ctx()).id for _ in range(sum(weights) * 3))
    assert all(picks[f"a{i}"] == 3 * w for i, w in enumerate(weights))


def test_least_connections_picks_the_least_loaded_per_capacity() -> None:
    a, b = agent(0, capacity=4), agent(1, capacity=1)
    a.in_flight, b.in_flight = 2, 1
    assert LeastConnections().choose(task(), [a, b], ctx()).id == "a0"


def test_power_of_two_never_picks_the_more_loaded_of_its_two_samples() -> None:
    agents = [agent(i) for i in range(2)]
    agents[0].queued = 5
    r = PowerOfTwo()
    assert all(r.choose(task(), agents, ctx(s)).id == "a1" for s in range(20))


def test_locality_stays_in_region_until_it_is_overloaded() -> None:
    eu, us = agent(0, region="eu"), agent(1, region="us")
    r = Locality()
    assert r.choose(task(region="eu"), [us, eu], ctx()).id == "a0"
    eu.in_flight = 1
    assert r.choose(task(region="eu"), [us, eu], ctx()).id == "a1"


def test_adaptive_prefers_the_agent_that_finishes_the_task_soonest() -> None:
    slow, fast = agent(0, speed=1.0), agent(1, speed=4.0)
    fast.in_flight, fast.backlog = 1, 2.0  # busy: 2 units ahead, so (2 + 1) / 4 = 0.75 s
    r = Adaptive(exploration=0.0)
    assert r.choose(task(1.0), [slow, fast], ctx()).id == "a1"
    fast.backlog = 4.0  # (4 + 1) / 4 = 1.25 s > 1 s on the idle slow agent
    assert r.choose(task(1.0), [slow, fast], ctx()).id == "a0"


def test_adaptive_learns_speed_and_error_rate_online() -> None:
    a = agent(0, speed=1.0)
    for t in range(30):
        observe(a.stats, alpha=0.2, now=float(t), ok=True, work=2.0, duration=1.0)
    assert abs(a.stats.speed - 2.0) < 0.01
    for t in range(30):
        observe(a.stats, alpha=0.2, now=float(t), ok=False, work=None, duration=None)
    assert a.stats.error_rate > 0.99
    assert expected_time(a, 1.0, ctx()) > 10 * 1.0 / 2.0


def test_adaptive_cost_objective_moves_work_to_the_cheaper_agent() -> None:
    cheap, dear = agent(0, speed=1.0, cost=1.0), agent(1, speed=1.2, cost=10.0)
    latency_only = Adaptive(exploration=0.0)
    assert latency_only.choose(task(), [cheap, dear], ctx()).id == "a1"
    cost_aware = Adaptive(ObjectiveWeights(latency=1.0, cost=1.0), exploration=0.0)
    assert cost_aware.choose(task(), [cheap, dear], ctx()).id == "a0"


def test_every_strategy_is_deterministic_for_a_seed() -> None:
    for name in (
        "round_robin",
        "weighted",
        "least_connections",
        "power_of_two",
        "random",
        "locality",
        "adaptive",
    ):
        runs = []
        for _ in range(2):
            router = make_router(BalancerConfig(strategy=name))  # type: ignore[arg-type]
            agents = [agent(i, speed=1.0 + i) for i in range(5)]
            c = ctx(7)
            picks = []
            for k in range(50):
                chosen = router.choose(task(0.1 * (k % 3 + 1)), agents, c)
                chosen.queued += 1
                chosen.backlog += 0.1
                picks.append(chosen.id)
            runs.append(picks)
        assert runs[0] == runs[1], name


def test_adaptive_speed_is_a_ratio_estimate_so_short_noisy_samples_weigh_little() -> None:
    a = agent(0, speed=2.0)
    for t in range(10):
        observe(a.stats, alpha=0.2, now=float(t), ok=True, work=1.0, duration=0.5)
    observe(a.stats, alpha=0.2, now=10.0, ok=True, work=0.001, duration=0.01)  # 20x too slow
    assert a.stats.speed > 1.95, "a short task's overhead barely moves the estimate"
    for t in range(40):
        observe(a.stats, alpha=0.2, now=float(t), ok=True, work=1.0, duration=1.0)
    assert abs(a.stats.speed - 1.0) < 0.01


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.1, 8),
            st.integers(1, 3),
            st.integers(0, 4),
            st.floats(0, 10),
            st.floats(0, 1),
        ),
        min_size=1,
        max_size=8,
    ),
    st.floats(0.001, 5),
)
def test_the_inlined_adaptive_choice_is_the_least_expected_time(
    rows: list[tuple[float, int, int, float, float]], work: float
) -> None:
    agents = []
    for i, (speed, capacity, busy, backlog, error) in enumerate(rows):
        a = agent(i, speed=speed, capacity=capacity)
        a.in_flight, a.backlog, a.stats.error_rate = busy, backlog, error
        agents.append(a)
    c = ctx()
    best = min(expected_time(a, work, c) for a in agents)
    chosen = _fastest(agents, work, c, None, math.inf)
    assert expected_time(chosen, work, c) == best
    assert chosen is next(a for a in agents if expected_time(a, work, c) == best)
