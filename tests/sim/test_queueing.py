"""The simulator against closed forms of queueing theory, with the default configuration.

Random routing over identical agents makes each agent an M/M/1 queue, whose sojourn time is
exponential with mean 1 / (mu - lambda). Pure pull (late binding with `prefetch` 0) over c
identical agents is an M/M/c queue, whose mean wait is Erlang C's `C(c, a) / (c mu - lambda)`.
Runs are long enough for the estimates to sit well inside the tolerances, and deterministic by
seed, so these tests never flake: a failure is a change in behaviour.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from swarmbalancer.sim.simulate import simulate
from swarmbalancer.workload import iter_tasks, parse_workload


def _run(agents: int, load: float, count: int, **config: Any) -> tuple[dict[str, Any], float]:
    """Simulate `agents` identical capacity-1 agents of speed 1 fed exponential work of mean 1
    by Poisson arrivals at `load` of their capacity. Returns the report and the load the sample
    really offered (its arrival rate times its mean work, per agent), which the closed forms take:
    a finite sample's load is off by a fraction of a percent, and near saturation that moves the
    mean sojourn by several."""
    workload = parse_workload(
        {
            "seed": 5,
            "agents": [{"id": "a", "count": agents, "capacity": 1, "speed": 1.0}],
            "tasks": {
                "count": count,
                "work": {"dist": "exponential", "mean": 1.0},
                "arrival": {"process": "poisson", "rate": load * agents},
            },
        },
        Path("."),
    )
    records = list(iter_tasks(workload))
    rate = len(records) / records[-1].arrival
    mean_work = sum(r.work for r in records) / len(records)
    report = simulate(workload, workload.balancer_config().updated(config))
    return report, rate * mean_work / agents


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load `a` = lambda / mu."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.timeout(120)
def test_random_routing_makes_each_agent_an_mm1_queue() -> None:
    report, load = _run(
        100, 0.8, 200_000, strategy="random", stealEnabled=False, rebalanceEnabled=False
    )
    sojourn = report["sojourn_ms"]
    mean = 1.0 / (1.0 - load)  # mu = 1
    assert report["lost"] == 0
    assert sojourn["mean"] / 1000 == pytest.approx(mean, rel=0.05)
    for name, q in (("p50", 0.5), ("p95", 0.95)):
        exact = -mean * math.log(1.0 - q)  # the exponential's quantile
        assert sojourn[name] / 1000 == pytest.approx(exact, rel=0.10), name


@pytest.mark.timeout(120)
def test_pure_pull_is_an_mmc_queue() -> None:
    c = 10
    report, load = _run(c, 0.9, 200_000, prefetch=0)
    lam = load * c
    p_wait = erlang_c(c, lam)
    mean_wait = p_wait / (c - lam)
    wait = report["queue_latency_ms"]
    assert report["lost"] == 0
    assert wait["mean"] / 1000 == pytest.approx(mean_wait, rel=0.05)
    # P(W > t) = C e^{-(c mu - lambda) t}: the 95th percentile of the wait
    p95 = math.log(p_wait / 0.05) / (c - lam)
    assert wait["p95"] / 1000 == pytest.approx(p95, rel=0.10)
