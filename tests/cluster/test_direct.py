"""The leader's direct attempts (`ClusterBalancer` with a `LeaseDesk`): a worker's success is
settled from its outcome without a worker Task, a failure goes through the handler (a worker
Task) and is retried there, a handle cancelled while its task runs ends cancelled with nothing
left behind, and with `taskTimeout` every attempt keeps its Task. The outcomes are handed to
the desk's `settle` as `pump_outcomes` does; the store is a real `RedisStore`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis import Redis

from redisserver import RedisServer
from swarmbalancer.cluster.agents import LeaseDesk, RedisAgent
from swarmbalancer.cluster.balancer import ClusterBalancer
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.config import BalancerConfig
from swarmbalancer.errors import TaskFailed
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store.redis_store import RedisStore

pytest_plugins = ["edgeredis"]
pytestmark = pytest.mark.timeout(30)

Scenario = Callable[[ClusterBalancer, LeaseDesk], Awaitable[None]]


def run(server: RedisServer, scenario: Scenario, **config: Any) -> None:
    settings = BalancerConfig(park_timeout=None, retry_backoff=0.0, **config)

    async def main() -> None:
        store = RedisStore(
            Redis(port=server.port), "direct", lambda: LevelQueue.from_config(settings)
        )
        balancer = ClusterBalancer(settings, store=store, backlog=1000)
        desk = LeaseDesk(
            None,  # type: ignore[arg-type]  # outcomes are handed to `settle` here
            SwarmKeys("direct"),
            token="tok",
            tag="t.",
            payload_of=store.payload_json,
            clock=balancer.now,
            timeout=lambda: balancer.config.task_timeout,
            wake=lambda: None,
        )
        balancer.attach(desk)
        await balancer.start()
        balancer.add_agent("w", RedisAgent("w", desk), capacity=2)
        balancer.recover()
        try:
            await scenario(balancer, desk)
        finally:
            await balancer.stop(drain=False)
            balancer.close()

    asyncio.run(main())


async def leased(desk: LeaseDesk) -> str:
    """The lease of the one direct attempt, once it has begun."""
    for _ in range(100):
        if desk.direct:
            (lease_id,) = desk.direct
            return lease_id
        await asyncio.sleep(0)
    raise AssertionError("no direct attempt began")


def report(desk: LeaseDesk, lease_id: str, **outcome: Any) -> None:
    """What pump_outcomes does with an outcome taken for a direct attempt."""
    assert desk.settle is not None
    desk.settle([(lease_id, desk.direct.pop(lease_id), {"lease": lease_id, **outcome})])


def test_a_success_is_settled_from_its_outcome_without_a_worker_task(
    server: RedisServer,
) -> None:
    async def scenario(balancer: ClusterBalancer, desk: LeaseDesk) -> None:
        handle = await balancer.submit({"n": 1})
        lease_id = await leased(desk)
        assert not balancer._running_tasks  # no Task waits for it
        report(desk, lease_id, ok=True, result={"n": 2}, runtime=0.25)
        assert handle.done() and handle.result() == {"n": 2}
        assert balancer.report()["completed"] == 1
        assert desk.direct == {} and not balancer._running_tasks

    run(server, scenario)


def test_a_failure_goes_through_the_handler_and_is_retried(server: RedisServer) -> None:
    async def scenario(balancer: ClusterBalancer, desk: LeaseDesk) -> None:
        handle = await balancer.submit("x", max_retries=1)
        first = await leased(desk)
        report(desk, first, ok=False, error="ValueError: boom", retryable=True)
        for _ in range(100):  # the slot's worker Task runs the retry: its handler awaits a lease
            if desk._waiting:
                break
            await asyncio.sleep(0)
        ((second, future),) = desk._waiting.items()
        assert second != first and handle.task.attempt == 2
        future.set_result({"lease": second, "ok": False, "error": "ValueError: boom again"})
        with pytest.raises(TaskFailed, match="boom again"):
            await asyncio.wait_for(handle, 5)
        assert balancer.report()["failed"] == 1

    run(server, scenario)


def test_a_handle_cancelled_while_its_task_runs_ends_cancelled_and_nothing_is_left(
    server: RedisServer,
) -> None:
    async def scenario(balancer: ClusterBalancer, desk: LeaseDesk) -> None:
        handle = await balancer.submit("x")
        lease_id = await leased(desk)
        handle.cancel()  # running: no worker Task to interrupt, the attempt sees the flag
        report(desk, lease_id, ok=True, result=1)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(handle, 5)
        assert desk.direct == {} and desk._resolved == {}
        assert balancer.report()["cancelled"] == 1

    run(server, scenario)


def test_with_a_task_timeout_every_attempt_keeps_its_worker_task(server: RedisServer) -> None:
    async def scenario(balancer: ClusterBalancer, desk: LeaseDesk) -> None:
        await balancer.submit("x")
        for _ in range(100):
            if balancer._running_tasks:
                break
            await asyncio.sleep(0)
        assert balancer._running_tasks and desk.direct == {}  # the handler awaits its lease

    run(server, scenario, task_timeout=30.0)
