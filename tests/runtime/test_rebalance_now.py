"""`Balancer.rebalance`: a dry run lists migrations and moves nothing; applying moves exactly
those tasks, counts them, and every task still completes once."""

from __future__ import annotations

import asyncio

import pytest

from swarmbalancer import Balancer
from swarmbalancer.model import Task


@pytest.mark.timeout(10)
def test_plan_moves_nothing_and_apply_moves_what_was_planned() -> None:
    async def main() -> None:
        gate = asyncio.Event()

        async def held(task: Task) -> int:
            await gate.wait()
            return int(task.payload)

        config = {"strategy": "round_robin", "stealEnabled": False, "checkInterval": 3600}
        async with Balancer(config) as lb:
            lb.add_agent("slow", held, speed_hint=1.0)
            lb.add_agent("fast", held, speed_hint=10.0)
            handles = [await lb.submit(n, estimate=1.0) for n in range(10)]
            await asyncio.sleep(0.01)
            queued = {a.id: a.queued for a in lb.coordinator.store.agents()}
            plan = lb.rebalance(apply=False)
            assert plan and all((m.source, m.target) == ("slow", "fast") for m in plan)
            assert {a.id: a.queued for a in lb.coordinator.store.agents()} == queued
            assert lb.rebalance(apply=False) == plan  # no cooldown was set by the dry run
            done = lb.rebalance(apply=True)
            assert done == plan
            after = {a.id: a.queued for a in lb.coordinator.store.agents()}
            assert after["slow"] == queued["slow"] - len(plan)
            assert after["fast"] == queued["fast"] + len(plan)
            assert lb.report()["migrations"] == len(plan)
            gate.set()
            assert sorted(await asyncio.gather(*handles)) == list(range(10))

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_rebalance_is_empty_while_rebalancing_is_off() -> None:
    async def main() -> None:
        async with Balancer({"rebalanceEnabled": False}) as lb:
            assert lb.rebalance(apply=True) == []

    asyncio.run(main())
