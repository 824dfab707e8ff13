"""Balancer.update_config: the keys read at each use change on a running balancer."""

from __future__ import annotations

import asyncio

import pytest

from swarmbalancer import Balancer, Task, TaskFailed
from swarmbalancer.errors import ConfigError


async def slow(task: Task) -> str:
    await asyncio.sleep(5)
    return "late"


@pytest.mark.timeout(10)
def test_a_new_task_timeout_applies_to_the_next_attempt() -> None:
    async def main() -> None:
        lb = Balancer({"maxRetries": 0})
        lb.add_agent("a", slow)
        async with lb:
            new = lb.update_config({"task_timeout": 0.05})
            assert new.task_timeout == 0.05
            assert lb.config.to_dict()["taskTimeout"] == 0.05
            handle = await lb.submit("x")
            with pytest.raises(TaskFailed, match=r"timeout after 0\.05s"):
                await handle

    asyncio.run(main())


def test_a_key_that_shaped_the_policies_is_refused_by_name() -> None:
    lb = Balancer()
    with pytest.raises(ConfigError, match=r"^discipline: cannot change while running"):
        lb.update_config({"discipline": "cfs"})
    assert lb.config.discipline == "fifo"


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("first", "then"),
    [("adaptive", "round_robin"), ("round_robin", "least_connections"), ("random", "adaptive")],
)
def test_the_strategy_switches_live_and_every_waiting_task_completes_once(
    first: str, then: str
) -> None:
    """Tasks waiting in the shared queue (late binding) or at agents (bound at submit) when the
    strategy changes all complete, each once, and new tasks route with the new strategy."""
    ran: list[int] = []

    async def work(task: Task) -> int:
        await asyncio.sleep(0.002)
        ran.append(task.payload)
        return int(task.payload)

    async def main() -> None:
        lb = Balancer({"strategy": first})
        for name in ("a", "b", "c"):
            lb.add_agent(name, work)
        async with lb:
            before = await lb.submit_many(range(150))
            await asyncio.sleep(0.01)
            assert lb.update_config({"strategy": then}).strategy == then
            assert lb.coordinator.router.late == (then != "round_robin" and then != "random")
            after = await lb.submit_many(range(150, 300))
            results = await asyncio.gather(*before, *after)
        assert results == list(range(300))
        assert sorted(ran) == list(range(300))
        report = lb.report()
        assert report["completed"] == 300 and report["lost"] == 0
        assert lb.config.strategy == then

    asyncio.run(main())


def test_an_invalid_value_is_refused_and_nothing_changes() -> None:
    lb = Balancer()
    with pytest.raises(ConfigError, match="maxRetries"):
        lb.update_config({"maxRetries": -1})
    with pytest.raises(ConfigError, match="unknown key"):
        lb.update_config({"nope": 1})
    assert lb.config.max_retries == 2


def test_giving_a_fixed_key_its_current_value_is_accepted() -> None:
    lb = Balancer()
    assert lb.update_config({"strategy": "adaptive", "maxRetries": 5}).max_retries == 5
    assert lb.coordinator.config.max_retries == 5
