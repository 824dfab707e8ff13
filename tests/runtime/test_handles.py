"""Handles behave as asyncio futures: cancel, callbacks, and every asyncio combinator."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from swarmbalancer import Balancer, Task, TaskFailed, TaskHandle, TaskRejected


async def echo(task: Task) -> Any:
    await asyncio.sleep(0)
    return task.payload


def _clean(report: dict[str, Any]) -> None:
    assert report["lost"] == 0 and report["open"] == 0


@pytest.mark.timeout(10)
def test_a_handle_is_a_future_that_asyncio_combinators_take_as_it_is() -> None:
    async def main() -> None:
        lb = Balancer()
        lb.add_agent("a", echo, capacity=4)
        async with lb:
            handles = [await lb.submit(i) for i in range(20)]
            assert all(asyncio.isfuture(h) for h in handles)
            gathered = asyncio.gather(*handles)
            assert list(gathered._children) == handles  # type: ignore[attr-defined]
            assert await gathered == list(range(20))
            more = [await lb.submit(i) for i in range(10)]
            done, pending = await asyncio.wait(more)
            assert done == set(more) and not pending
            again = [await lb.submit(i) for i in range(10)]
            assert sorted([await f for f in asyncio.as_completed(again)]) == list(range(10))
            one = await lb.submit("x")
            assert await asyncio.wait_for(one, timeout=5) == "x"
            seen: list[Any] = []
            last = await lb.submit("y")
            last.add_done_callback(lambda h: seen.append(h.result()))
            dropped = await lb.submit("z")
            dropped.add_done_callback(seen.append)
            assert dropped.remove_done_callback(seen.append) == 1
            await asyncio.gather(last, dropped)
            await asyncio.sleep(0)
            assert seen == ["y"]
            assert last.done() and not last.cancelled() and last.exception() is None
        _clean(lb.report())

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_cancelling_a_queued_task_removes_it_and_the_report_counts_it_cancelled() -> None:
    ran: list[int] = []

    async def gated(task: Task) -> int:
        await gate.wait()
        ran.append(task.payload)
        return int(task.payload)

    gate: asyncio.Event

    async def main() -> dict[str, Any]:
        nonlocal gate
        gate = asyncio.Event()
        lb = Balancer()
        lb.add_agent("a", gated, capacity=1)
        async with lb:
            handles = [await lb.submit(i) for i in range(5)]
            await asyncio.sleep(0.01)
            assert handles[3].cancel() and handles[3].cancelled()
            assert not handles[3].cancel() or handles[3].cancelled()
            with pytest.raises(asyncio.CancelledError):
                handles[3].result()
            gate.set()
            results = await asyncio.gather(*handles, return_exceptions=True)
        assert isinstance(results[3], asyncio.CancelledError)
        assert [r for i, r in enumerate(results) if i != 3] == [0, 1, 2, 4]
        assert 3 not in ran
        return lb.report()

    report = asyncio.run(main())
    assert report["cancelled"] == 1 and report["completed"] == 4 and report["failed"] == 0
    _clean(report)


@pytest.mark.timeout(10)
def test_cancelling_a_running_async_task_interrupts_its_handler_and_frees_the_slot() -> None:
    interrupted: list[int] = []

    async def sleepy(task: Task) -> int:
        try:
            await asyncio.sleep(5 if task.payload == 0 else 0)
        except asyncio.CancelledError:
            interrupted.append(task.payload)
            raise
        return int(task.payload)

    async def main() -> dict[str, Any]:
        lb = Balancer({"maxRetries": 3})
        lb.add_agent("a", sleepy, capacity=1)
        async with lb:
            first = await lb.submit(0)
            rest = [await lb.submit(i) for i in range(1, 6)]
            await asyncio.sleep(0.01)
            assert first.task.state.value == "running"
            assert first.cancel()
            assert await asyncio.gather(*rest) == [1, 2, 3, 4, 5]
            assert first.cancelled()
            async with asyncio.timeout(1):  # the worker's own timeouts still work afterwards
                await (await lb.submit(9))
        return lb.report()

    report = asyncio.run(main())
    assert interrupted == [0]
    assert report["cancelled"] == 1 and report["retries"] == 0
    assert report["per_agent"][0]["failed"] == 0, "a cancelled attempt is not a failed one"
    _clean(report)


@pytest.mark.timeout(10)
def test_a_handler_that_swallows_its_cancellation_and_fails_still_ends_cancelled() -> None:
    async def stubborn(task: Task) -> Any:
        if task.payload == "stubborn":
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                raise RuntimeError("ignored the cancellation") from None
        async with asyncio.timeout(0.01):  # the worker's own timeouts still work afterwards
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.001):
                    await asyncio.sleep(1)
        return task.payload

    async def main() -> dict[str, Any]:
        lb = Balancer({"maxRetries": 2, "retryBackoff": 0})
        lb.add_agent("a", stubborn, capacity=1)
        async with lb:
            handle = await lb.submit("stubborn")
            await asyncio.sleep(0.01)
            handle.cancel()
            after = [await lb.submit(i) for i in range(3)]
            assert await asyncio.gather(*after) == [0, 1, 2]
            await asyncio.gather(handle, return_exceptions=True)
            assert handle.cancelled()
        return lb.report()

    report = asyncio.run(main())
    assert report["cancelled"] == 1 and report["completed"] == 3
    assert report["retries"] == 0 and report["per_agent"][0]["failed"] == 0
    _clean(report)


@pytest.mark.timeout(10)
def test_cancelling_a_running_plain_task_keeps_its_slot_until_the_thread_returns() -> None:
    release = threading.Event()
    order: list[str] = []

    def blocking(task: Task) -> str:
        if task.payload == "stuck":
            release.wait(5)
        order.append(str(task.payload))
        return str(task.payload)

    async def main() -> dict[str, Any]:
        lb = Balancer()
        lb.add_agent("a", blocking, capacity=1)
        async with lb:
            stuck = await lb.submit("stuck")
            after = await lb.submit("after")
            await asyncio.sleep(0.02)
            assert stuck.cancel()
            await asyncio.sleep(0.05)
            assert not after.done() and order == [], "the slot is still the thread's"
            release.set()
            assert await after == "after"
            assert stuck.cancelled()
        return lb.report()

    report = asyncio.run(main())
    assert order == ["stuck", "after"]
    assert report["cancelled"] == 1 and report["completed"] == 1
    _clean(report)


@pytest.mark.timeout(10)
def test_wait_for_past_its_timeout_cancels_the_task_as_for_any_future() -> None:
    async def slow(task: Task) -> None:
        await asyncio.sleep(5)

    async def main() -> dict[str, Any]:
        lb = Balancer()
        lb.add_agent("a", slow)
        async with lb:
            handle = await lb.submit(None)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(handle, timeout=0.02)
            assert handle.cancelled()
        return lb.report()

    report = asyncio.run(main())
    assert report["cancelled"] == 1 and report["failed"] == 0
    _clean(report)


@pytest.mark.timeout(10)
def test_task_failed_keeps_every_attempts_exception_and_chains_the_last() -> None:
    class Upstream(Exception):
        def __init__(self, code: int) -> None:
            super().__init__(f"status {code}")
            self.code = code

    async def broken(task: Task) -> None:
        raise Upstream(500 + task.attempt)

    async def main() -> None:
        lb = Balancer({"maxRetries": 2, "retryBackoff": 0, "failureThreshold": 100})
        lb.add_agent("a", broken)
        async with lb:
            handle = await lb.submit(None)
            with pytest.raises(TaskFailed) as caught:
                await handle
        failed = caught.value
        assert isinstance(failed.__cause__, Upstream) and failed.__cause__.code == 503
        assert [e.code for e in failed.errors] == [501, 502, 503]  # type: ignore[attr-defined]
        assert failed.last_error is failed.__cause__ and failed.attempts == 3
        assert isinstance(handle.exception(), TaskFailed)

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_a_key_returns_the_same_handle_after_completion_and_a_refused_id_registers_no_key() -> None:
    async def main() -> None:
        lb = Balancer()
        lb.add_agent("a", echo)
        async with lb:
            first = await lb.submit(1, idempotency_key="k", task_id="t1")
            assert await first == 1
            assert await lb.submit(2, idempotency_key="k", task_id="t1") is first
            fresh = await lb.submit(5, idempotency_key="k3")
            with pytest.raises(TaskRejected, match="task_id"):
                await lb.submit(6, idempotency_key="k4", task_id=fresh.id)
            later = await lb.submit(7, idempotency_key="k4")
            assert later is not fresh and await later == 7

    asyncio.run(main())


@pytest.mark.timeout(20)
def test_keyed_handles_are_remembered_only_as_long_as_the_store_remembers_keys() -> None:
    from swarmbalancer import MemoryStore
    from swarmbalancer.config import load_config
    from swarmbalancer.policies.levels import LevelQueue

    cfg = load_config(None)
    store = MemoryStore(lambda: LevelQueue.from_config(cfg), remember_keys=50)

    async def main() -> None:
        lb = Balancer(cfg, store=store)
        lb.add_agent("a", echo, capacity=8)
        async with lb:
            for i in range(200):
                await lb.submit(i, idempotency_key=f"k{i}")
            await lb.join()
            assert len(lb._keyed) == 50
            newest = await lb.submit(-1, idempotency_key="k199")
            assert isinstance(newest, TaskHandle) and await newest == 199
            oldest = await lb.submit(-1, idempotency_key="k0")
            assert await oldest == -1, "a forgotten key is a new task"

    asyncio.run(main())
