"""The simulator and the embedded runtime run the same policy code and agree on the outcome.

The real runs take about 0.4 s each on synthetic agents; the work is large next to timer jitter
and dispatch overhead (25 ms per task), and the median of three runs is taken.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from swarmbalancer.model import AgentState, Task
from swarmbalancer.policies.routing import RoundRobin, RoutingContext
from swarmbalancer.runtime.runner import run_workload
from swarmbalancer.sim.simulate import simulate
from swarmbalancer.workload import Workload, parse_workload


def swarm(count: int, work: float, speeds: Sequence[float], **config: Any) -> Workload:
    """One capacity-1 agent per speed, `count` tasks of constant work submitted at once.

    The balancer gets each speed as a hint: these tests compare the simulator with real runs, not
    how fast a strategy learns speeds.
    """
    return parse_workload(
        {
            "seed": 13,
            "agents": [{"id": f"a{i}", "speed": s, "speed_hint": s} for i, s in enumerate(speeds)],
            "tasks": {"count": count, "work": {"dist": "constant", "value": work}},
            "config": config or None,
        },
        Path("."),
    )


def real(workload: Workload, **config: Any) -> dict[str, Any]:
    return asyncio.run(run_workload(workload, workload.balancer_config().updated(config)))


def simulated(workload: Workload, **config: Any) -> dict[str, Any]:
    return simulate(workload, workload.balancer_config().updated(config))


def completions(report: dict[str, Any]) -> dict[str, int]:
    return {row["id"]: row["completed"] for row in report["per_agent"]}


def test_a_router_changed_in_one_place_changes_run_and_simulate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workload = swarm(40, 0.002, [1.0] * 4, stealEnabled=False, rebalanceEnabled=False)
    even = {f"a{i}": 10 for i in range(4)}
    assert completions(real(workload, strategy="round_robin")) == even
    assert completions(simulated(workload, strategy="round_robin")) == even

    def first(
        self: RoundRobin, task: Task, candidates: Sequence[AgentState], ctx: RoutingContext
    ) -> AgentState:
        return candidates[0]

    monkeypatch.setattr(RoundRobin, "choose", first)
    lopsided = {"a0": 40, "a1": 0, "a2": 0, "a3": 0}
    assert completions(real(workload, strategy="round_robin")) == lopsided
    assert completions(simulated(workload, strategy="round_robin")) == lopsided


def timer_overshoot(interval: float = 0.025, samples: int = 12) -> float:
    """How much longer than asked this machine's event loop sleeps right now (median, as a
    fraction): the simulator has no such delay, so a loaded machine stretches only the real run."""

    async def measure() -> list[float]:
        loop = asyncio.get_running_loop()
        out = []
        for _ in range(samples):
            start = loop.time()
            await asyncio.sleep(interval)
            out.append((loop.time() - start) / interval - 1.0)
        return out

    return max(0.0, statistics.median(asyncio.run(measure())))


def test_simulate_agrees_with_a_real_run_on_makespan_and_ranking() -> None:
    """Within 10% plus the timer overshoot measured just before (about 0 on a quiet machine)."""
    workload = swarm(150, 0.025, [4.0, 4.0, 1.0, 1.0, 1.0, 1.0])
    makespans: dict[str, tuple[float, float]] = {}
    for strategy in ("round_robin", "adaptive"):
        sim = simulated(workload, strategy=strategy)["makespan_s"]
        slack = timer_overshoot()
        runs = [real(workload, strategy=strategy) for _ in range(3)]
        assert all(r["lost"] == 0 and r["completed"] == 150 for r in runs)
        measured = statistics.median(r["makespan_s"] for r in runs)
        assert measured == pytest.approx(sim, rel=0.10 + slack), (strategy, slack)
        makespans[strategy] = (sim, measured)
    (rr_sim, rr_real), (ad_sim, ad_real) = makespans["round_robin"], makespans["adaptive"]
    assert ad_sim < 0.9 * rr_sim  # clearly different strategies ...
    assert ad_real < rr_real  # ... ranked the same way for real
