"""Synthetic agents: they hold their speed in real time and fail exactly as the faults say."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from swarmbalancer.model import Task
from swarmbalancer.workload import (
    FaultPlan,
    SyntheticFailure,
    SyntheticResult,
    SyntheticSwarm,
    Workload,
    attempt_outcome,
    parse_workload,
)


def swarm_workload(faults: list[dict[str, Any]] | None = None, **agent: Any) -> Workload:
    data: dict[str, Any] = {
        "seed": 9,
        "agents": [{"id": "a", **agent}],
        "tasks": {"count": 1, "work": {"dist": "constant", "value": 0.001}},
        "faults": faults or [],
    }
    return parse_workload(data, Path("."))


def task(index: int, work: float, attempt: int = 0) -> Task:
    t = Task.create({"work": work}, now=0.0, task_id=f"t{index:06d}")
    t.attempt = attempt
    return t


def test_an_agent_holds_its_speed_over_a_busy_period() -> None:
    async def main() -> float:
        handle = SyntheticSwarm(swarm_workload(speed=2.0)).handler_for("a")
        loop = asyncio.get_running_loop()
        began = loop.time()
        for i in range(200):
            await handle(task(i, 0.001))
        return loop.time() - began

    elapsed = asyncio.run(main())
    ideal = 200 * 0.001 / 2.0
    assert 0.95 * ideal <= elapsed <= 1.5 * ideal, elapsed


def test_capacity_slots_run_side_by_side() -> None:
    async def main() -> float:
        handle = SyntheticSwarm(swarm_workload(capacity=2)).handler_for("a")

        async def stream(offset: int) -> None:
            for i in range(50):
                await handle(task(offset + i, 0.002))

        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.gather(stream(0), stream(1000))
        return loop.time() - began

    elapsed = asyncio.run(main())
    ideal = 50 * 0.002
    assert 0.95 * ideal <= elapsed <= 1.5 * ideal, elapsed


def test_an_overcommitted_agent_queues_on_its_slots() -> None:
    async def main() -> list[SyntheticResult]:
        handle = SyntheticSwarm(swarm_workload()).handler_for("a")
        return list(await asyncio.gather(*(handle(task(i, 0.01)) for i in range(3))))

    results = asyncio.run(main())
    starts = sorted(r.start for r in results)
    assert starts[1] - starts[0] == pytest.approx(0.01) and starts[2] - starts[1] == pytest.approx(
        0.01
    )


def test_a_failure_is_raised_at_the_end_of_the_attempt() -> None:
    wl = swarm_workload([{"agent": "a", "from": 0, "error_rate": 1.0}])

    async def main() -> float:
        handle = SyntheticSwarm(wl).handler_for("a")
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(SyntheticFailure) as info:
            await handle(task(0, 0.03))
        assert (info.value.agent_id, info.value.task_id) == ("a", "t000000")
        return loop.time() - began

    assert asyncio.run(main()) >= 0.03 - 1e-6  # the loop may wake a clock tick early


def test_failures_follow_the_fault_window() -> None:
    wl = swarm_workload([{"agent": "a", "from": 0.05, "until": 0.15, "error_rate": 1.0}])

    async def main() -> list[tuple[float, bool]]:
        swarm = SyntheticSwarm(wl)
        swarm.start()
        handle = swarm.handler_for("a")
        assert swarm.origin is not None
        seen: list[tuple[float, bool]] = []
        loop = asyncio.get_running_loop()
        for i in range(40):
            began = loop.time() - swarm.origin
            try:
                await handle(task(i, 0.005))
                seen.append((began, True))
            except SyntheticFailure:
                seen.append((began, False))
        return seen

    seen = asyncio.run(main())
    # Attempts well inside the window fail; attempts well outside succeed (the window edges are
    # left out: a start may be back-dated by the continuity allowance).
    assert all(not ok for t, ok in seen if 0.06 <= t <= 0.14)
    assert all(ok for t, ok in seen if t < 0.04 or t > 0.16)
    assert any(not ok for _, ok in seen) and any(ok for _, ok in seen)


def test_a_down_agent_fails_at_once() -> None:
    wl = swarm_workload([{"agent": "a", "from": 0, "down": True}])

    async def main() -> float:
        handle = SyntheticSwarm(wl).handler_for("a")
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(SyntheticFailure, match="down"):
            await handle(task(0, 10.0))
        return loop.time() - began

    assert asyncio.run(main()) < 0.5


def test_attempt_outcomes_are_pure_and_independent_of_order() -> None:
    wl = swarm_workload([{"agent": "a", "from": 0, "until": 10, "error_rate": 0.3, "slowdown": 2}])
    plan = FaultPlan.from_workload(wl)

    def outcome(task_id: str, attempt: int, start: float = 1.0) -> tuple[float, bool]:
        o = attempt_outcome(
            seed=wl.seed,
            task_id=task_id,
            attempt=attempt,
            agent_id="a",
            speed=4.0,
            work=2.0,
            start=start,
            faults=plan,
        )
        return o.duration, o.failed

    ids = [f"t{i:06d}" for i in range(4000)]
    forward = [outcome(t, 0) for t in ids]
    backward = [outcome(t, 0) for t in reversed(ids)][::-1]
    assert forward == backward
    assert all(d == pytest.approx(2.0 / 4.0 * 2.0) for d, _ in forward)
    share = sum(failed for _, failed in forward) / len(ids)
    assert share == pytest.approx(0.3, abs=0.03)
    assert [outcome(t, 1) for t in ids] != forward
    assert outcome("t000000", 0, start=10.0) == (0.5, False)


def test_the_swarm_and_a_simulator_agree_on_outcomes() -> None:
    wl = swarm_workload([{"agent": "a", "from": 0, "error_rate": 0.5}])
    swarm = SyntheticSwarm(wl)
    for i in range(50):
        t = task(i, 0.25, attempt=i % 3)
        expected = attempt_outcome(
            seed=9,
            task_id=t.id,
            attempt=t.attempt,
            agent_id="a",
            speed=1.0,
            work=0.25,
            start=3.0,
            faults=FaultPlan(wl.faults),
        )
        assert swarm.outcome(t, "a", 3.0) == expected


def test_a_task_without_work_is_refused_clearly() -> None:
    async def main() -> None:
        handle = SyntheticSwarm(swarm_workload()).handler_for("a")
        with pytest.raises(ValueError, match="payload"):
            await handle(Task.create("no work", now=0.0, task_id="x"))

    asyncio.run(main())


def test_an_unknown_agent_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no synthetic agent named 'zz'"):
        SyntheticSwarm(swarm_workload()).handler_for("zz")


def test_a_cancelled_attempt_frees_its_slot() -> None:
    async def main() -> SyntheticResult:
        handle = SyntheticSwarm(swarm_workload()).handler_for("a")
        long = asyncio.ensure_future(handle(task(0, 5.0)))
        await asyncio.sleep(0.01)
        long.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long
        return await handle(task(1, 0.01))

    result = asyncio.run(main())
    assert result.start < 0.5  # not queued behind the abandoned 5 s attempt
    assert result.end - result.start == pytest.approx(0.01)
