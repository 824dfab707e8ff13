"""The embedded runtime: real handlers on an asyncio loop, driven by the coordinator."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from swarmbalancer import Balancer, QueueFull, Task, TaskFailed
from swarmbalancer.errors import ConfigError, TaskRejected

REPORT_KEYS = {
    "completed",
    "failed",
    "lost",
    "makespan_s",
    "lower_bound_s",
    "throughput_per_s",
    "queue_latency_ms",
    "sojourn_ms",
    "utilization",
    "load_variance",
    "jain_fairness",
    "migration_rate",
    "steals",
    "migrations",
    "retries",
    "per_agent",
    "per_priority",
}


async def echo(task: Task) -> Any:
    await asyncio.sleep(0)
    return {
        "id": task.id,
        "payload": task.payload,
        "agent": task.agent_id,
        "attempt": task.attempt,
        "priority": task.priority.label,
        "tenant": task.tenant,
    }


def test_submitted_tasks_return_their_handlers_results_and_the_report_accounts_for_all() -> None:
    async def main() -> dict[str, Any]:
        lb = Balancer({"strategy": "adaptive", "stealThreshold": 5})
        lb.add_agent("a1", echo, capacity=2, region="eu")
        lb.add_agent("a2", echo, capacity=2, region="us")
        async with lb:
            handles = [await lb.submit({"n": i}, priority="high", tenant="t1") for i in range(50)]
            results = [await h for h in handles]
            await lb.join()
        assert [r["payload"] for r in results] == [{"n": i} for i in range(50)]
        assert {r["agent"] for r in results} <= {"a1", "a2"}
        assert all(
            r["attempt"] == 1 and r["priority"] == "high" and r["tenant"] == "t1" for r in results
        )
        return lb.report()

    report = asyncio.run(main())
    assert set(report) >= REPORT_KEYS
    assert report["completed"] == 50 and report["lost"] == 0 and report["failed"] == 0
    json.dumps(report)


def test_plain_functions_run_in_threads() -> None:
    seen: set[str] = set()

    def work(task: Task) -> int:
        seen.add(threading.current_thread().name)
        return int(task.payload) * 2

    async def main() -> list[int]:
        lb = Balancer()
        lb.add_agent("a", work, capacity=4)
        async with lb:
            handles = [await lb.submit(i) for i in range(20)]
            return [await h for h in handles]

    assert asyncio.run(main()) == [i * 2 for i in range(20)]
    assert all(name.startswith("swarmbalancer") for name in seen)


def test_a_failing_handler_is_retried_on_another_agent_then_raises_task_failed() -> None:
    calls: list[str] = []

    async def broken(task: Task) -> None:
        calls.append(task.agent_id or "")
        raise RuntimeError("boom")

    async def main() -> None:
        lb = Balancer({"maxRetries": 2, "retryBackoff": 0.001, "failureThreshold": 100})
        lb.add_agent("a", broken)
        lb.add_agent("b", broken)
        async with lb:
            handle = await lb.submit("x")
            with pytest.raises(TaskFailed, match="boom"):
                await handle
        report = lb.report()
        assert report["failed"] == 1 and report["retries"] == 2 and report["lost"] == 0

    asyncio.run(main())
    assert len(calls) == 3
    assert calls[0] != calls[1], "a retry prefers an agent the task has not failed on"


def test_an_attempt_past_the_task_timeout_counts_as_failed() -> None:
    async def slow(task: Task) -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        lb = Balancer({"taskTimeout": 0.05, "maxRetries": 0})
        lb.add_agent("a", slow)
        async with lb:
            with pytest.raises(TaskFailed, match="timeout"):
                await (await lb.submit(None))

    asyncio.run(main())


def test_a_repeated_idempotency_key_returns_the_first_handle() -> None:
    async def main() -> None:
        lb = Balancer()
        lb.add_agent("a", echo)
        async with lb:
            first = await lb.submit(1, idempotency_key="k")
            second = await lb.submit(2, idempotency_key="k")
            assert second is first
            assert (await second)["payload"] == 1
        assert lb.report()["accepted"] == 1

    asyncio.run(main())


def test_removing_an_agent_moves_its_queue_and_loses_nothing() -> None:
    async def slowish(task: Task) -> str:
        await asyncio.sleep(0.002)
        return task.agent_id or ""

    async def main() -> None:
        lb = Balancer({"strategy": "round_robin", "stealEnabled": False})
        lb.add_agent("a", slowish)
        lb.add_agent("b", slowish)
        async with lb:
            handles = [await lb.submit(i) for i in range(40)]
            lb.remove_agent("b")
            lb.add_agent("c", slowish)
            agents = [await h for h in handles]
        assert agents.count("b") <= 1, "b ran at most the task it had started"
        report = lb.report()
        assert report["completed"] == 40 and report["lost"] == 0

    asyncio.run(main())


def test_submitting_beyond_max_queue_size_raises_when_configured_to() -> None:
    async def blocked(task: Task) -> None:
        await asyncio.sleep(0.05)

    async def main() -> None:
        lb = Balancer({"maxQueueSize": 2, "queueFull": "raise"})
        lb.add_agent("a", blocked)
        async with lb:
            for i in range(3):
                await lb.submit(i)  # one runs, two queue
            with pytest.raises(QueueFull, match="maxQueueSize"):
                await lb.submit(99)
        assert lb.report()["completed"] == 3

    asyncio.run(main())


def test_submitting_beyond_max_queue_size_waits_by_default() -> None:
    async def quick(task: Task) -> None:
        await asyncio.sleep(0.001)

    async def main() -> None:
        lb = Balancer({"maxQueueSize": 2})
        lb.add_agent("a", quick)
        async with lb:
            for i in range(20):
                await lb.submit(i)
                assert lb.coordinator.queued_total() <= 2
        assert lb.report()["completed"] == 20

    asyncio.run(main())


def test_bad_configuration_and_bad_tasks_name_the_field() -> None:
    with pytest.raises(ConfigError, match="stealThreshold"):
        Balancer({"stealThreshold": -1})
    with pytest.raises(ConfigError, match="unknown key"):
        Balancer({"noSuchKey": 1})

    async def main() -> None:
        lb = Balancer()
        lb.add_agent("a", echo)
        async with lb:
            with pytest.raises(TaskRejected, match="priority"):
                await lb.submit(1, priority="urgent")
            ok = await lb.submit(2)
            await ok
        assert lb.report()["completed"] == 1

    asyncio.run(main())


def test_a_handle_awaited_before_and_after_its_task_ends_gives_the_result_to_every_awaiter() -> (
    None
):
    async def main() -> None:
        gate = asyncio.Event()

        async def waits(task: Task) -> Any:
            await gate.wait()
            return task.payload

        lb = Balancer()
        lb.add_agent("a", waits, capacity=4)
        async with lb:
            handle = await lb.submit("x")
            assert not handle.done()
            with pytest.raises(asyncio.InvalidStateError):
                handle.result()
            first = asyncio.ensure_future(_await(handle))
            shielded = asyncio.ensure_future(_await(asyncio.shield(handle)))
            await asyncio.sleep(0)
            shielded.cancel()  # an awaiter giving up behind a shield leaves the task running
            gate.set()
            assert await first == "x"
            assert await handle == "x" and handle.result() == "x"
            assert shielded.cancelled() and not handle.cancelled()

    asyncio.run(main())


async def _await(handle: Any) -> Any:
    return await handle


def test_a_handler_runs_inside_a_task_of_its_own_so_timeouts_and_current_task_work() -> None:
    async def main() -> dict[str, Any]:
        seen: list[asyncio.Task[Any] | None] = []

        async def guarded(task: Task) -> Any:
            seen.append(asyncio.current_task())
            async with asyncio.timeout(0.001 if task.payload == "slow" else 5.0):
                await asyncio.sleep(1.0 if task.payload == "slow" else 0)
            return task.payload

        lb = Balancer({"maxRetries": 0})
        lb.add_agent("a", guarded, capacity=1)
        async with lb:
            fast = [await lb.submit("fast") for _ in range(40)]
            slow = await lb.submit("slow")
            assert [await h for h in fast] == ["fast"] * 40
            with pytest.raises(TaskFailed, match="TimeoutError"):
                await slow
        assert all(t is not None for t in seen)
        return lb.report()

    report = asyncio.run(main())
    assert report["completed"] == 40 and report["failed"] == 1 and report["lost"] == 0


def test_handlers_that_never_wait_still_let_the_loop_run_other_work() -> None:
    async def main() -> int:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        async def instant(task: Task) -> Any:
            return None

        lb = Balancer({"rebalanceEnabled": False})
        lb.add_agent("a", instant, capacity=1)
        background = asyncio.ensure_future(ticker())
        async with lb:
            for _ in range(2_000):
                await lb.submit(None)
            before = ticks
            await lb.join()
            during = ticks - before
        background.cancel()
        return during

    # one worker runs the 2,000 tasks; it must yield to the loop every few of them
    assert asyncio.run(main()) >= 2_000 // 32


def test_a_speed_hint_is_only_where_the_learned_speed_starts_and_a_bad_one_is_named() -> None:
    async def main() -> None:
        lb = Balancer({})
        lb.add_agent("told", echo, speed_hint=3.0)
        lb.add_agent("untold", echo)
        speeds = {a.id: a.stats.speed for a in lb.coordinator.store.agents()}
        assert speeds == {"told": 3.0, "untold": 1.0}
        with pytest.raises(TaskRejected, match="speed_hint"):
            lb.add_agent("bad", echo, speed_hint=0.0)

    asyncio.run(main())


@pytest.mark.timeout(20)
def test_with_one_class_each_agent_starts_its_tasks_in_submission_order() -> None:
    started: dict[str, list[int]] = {"slow": [], "mid": [], "fast": []}
    speeds = {"slow": 1.0, "mid": 2.0, "fast": 4.0}

    def agent(agent_id: str) -> Any:
        async def handler(task: Task) -> None:
            started[agent_id].append(task.payload)
            await asyncio.sleep(task.payload % 7 / 2000 / speeds[agent_id])

        return handler

    async def main() -> dict[str, Any]:
        lb = Balancer({"agingInterval": 0.01})  # aging at work while tasks wait
        for agent_id in speeds:  # one slot each: several slots start concurrently, in any order
            lb.add_agent(agent_id, agent(agent_id))
        async with lb:
            for i in range(300):
                await lb.submit(i, estimate=i % 7 / 2000)
            await lb.join()
        return lb.report()

    report = asyncio.run(main())
    assert report["completed"] == 300 and report["lost"] == 0
    for agent_id, order in started.items():
        assert order == sorted(order), agent_id
