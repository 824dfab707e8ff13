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
    with pytest.raises(ConfigError, match=r"^strategy: cannot change while running"):
        lb.update_config({"strategy": "round_robin"})
    assert lb.config.strategy == "adaptive"


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
