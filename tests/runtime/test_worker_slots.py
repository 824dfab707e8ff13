"""A worker Task serves its slot for as long as the agent has work: the inline path for async
handlers, the yield it takes every few tasks while holding its next one, and the plain submit
path all keep the balancer's promises (each task once, cancellation, the same task fields)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from swarmbalancer import Balancer, Priority, Task
from swarmbalancer.runtime.jobs import make_task


async def noop(task: Task) -> Any:
    return task.payload


@pytest.mark.timeout(20)
def test_a_busy_slot_keeps_its_worker_task_instead_of_getting_a_new_one_at_each_yield() -> None:
    started: list[object] = []

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        started.append(coro)  # every Task the balancer makes while the batch runs: its workers
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def main() -> None:
        lb = Balancer({"rebalanceEnabled": False})
        lb.add_agent("a", noop, capacity=4)
        async with lb:
            asyncio.get_running_loop().set_task_factory(counting)
            handles = await lb.submit_many(range(2_000))
            assert await asyncio.gather(*handles) == list(range(2_000))
            asyncio.get_running_loop().set_task_factory(None)
        assert lb.report()["completed"] == 2_000

    asyncio.run(main())
    # one worker per slot (a slot may end when the queue runs dry for a moment, rarely)
    assert 1 <= len(started) <= 8


@pytest.mark.timeout(20)
def test_a_task_cancelled_as_its_slot_yields_holding_it_ends_cancelled_and_the_slot_goes_on() -> (
    None
):
    async def main() -> None:
        lb = Balancer({"rebalanceEnabled": False})
        lb.add_agent("a", noop, capacity=1)
        async with lb:
            handles = await lb.submit_many(range(40))
            # task 17 is claimed as task 16 ends, and the slot yields holding it: the callbacks
            # of task 16's handle run in that yield
            handles[15].add_done_callback(lambda _: handles[16].cancel())
            results = await asyncio.gather(*handles, return_exceptions=True)
        assert handles[16].cancelled()
        assert [r for i, r in enumerate(results) if i != 16] == [i for i in range(40) if i != 16]
        report = lb.report()
        assert (report["completed"], report["cancelled"], report["lost"]) == (39, 1, 0)

    asyncio.run(main())


@pytest.mark.timeout(20)
def test_stopping_without_draining_while_a_slot_yields_cancels_what_it_held() -> None:
    async def main() -> None:
        lb = Balancer({"rebalanceEnabled": False})
        lb.add_agent("a", noop, capacity=1)
        await lb.start()
        handles = await lb.submit_many(range(100))
        stopper: list[asyncio.Task[None]] = []
        handles[15].add_done_callback(
            lambda _: stopper.append(asyncio.ensure_future(lb.stop(drain=False)))
        )
        results = await asyncio.gather(*handles, return_exceptions=True)
        await stopper[0]
        done = [r for r in results if not isinstance(r, BaseException)]
        assert done == list(range(len(done))) and len(done) >= 16
        assert all(h.cancelled() for h in handles[len(done) :])
        report = lb.report()
        assert report["completed"] + report["cancelled"] == 100 and report["lost"] == 0

    asyncio.run(main())


@pytest.mark.timeout(20)
def test_a_plain_submit_makes_the_same_task_as_the_full_validation() -> None:
    async def main() -> None:
        lb = Balancer({"maxRetries": 4})
        lb.add_agent("a", noop)
        async with lb:
            plain = await lb.submit("p")
            named = await lb.submit("p", priority=Priority.NORMAL)  # the validating path
            batch = (await lb.submit_many(["p"]))[0]
            for handle in (plain, named, batch):
                assert await handle == "p"
        full = make_task(
            "p", 0.0, new_id=lambda: "x", default_retries=4, clock="", relative_hint=""
        )
        for handle in (plain, named, batch):
            task = handle.task
            assert (task.priority, task.max_retries, task.tenant, task.estimate) == (
                full.priority,
                full.max_retries,
                full.tenant,
                full.estimate,
            )
            assert task.id.startswith(lb._prefix)

    asyncio.run(main())


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("capacities", "round_size"), [((4, 4), 32), ((30, 20), 50)])
def test_a_burst_of_submits_lets_the_loop_run_once_per_slot_and_never_less_often_than_32(
    capacities: tuple[int, ...], round_size: int
) -> None:
    """A loop of submits that never waits lets the loop run after one submit per slot (at least
    32), so each woken worker finds a task, and tasks start while the burst goes on."""
    ran: list[int] = []
    submitted = 0
    seen: set[int] = set()  # how many had been submitted, each time another coroutine ran

    async def record(task: Task) -> Any:
        ran.append(task.payload)

    async def watch() -> None:
        while True:
            seen.add(submitted)
            await asyncio.sleep(0)

    async def main() -> None:
        nonlocal submitted
        lb = Balancer({"rebalanceEnabled": False})
        for i, capacity in enumerate(capacities):
            lb.add_agent(f"a{i}", record, capacity=capacity)
        async with lb:
            watcher = asyncio.create_task(watch())
            await asyncio.sleep(0)
            for i in range(3 * round_size):
                await lb.submit(i)
                submitted += 1
            assert ran  # tasks ran while the burst went on
            await lb.join()
            watcher.cancel()
        # the k-th round's last submit lets the loop run, before it returns
        during = {n for n in seen if 0 < n < 3 * round_size}
        assert during == {round_size - 1, 2 * round_size - 1, 3 * round_size - 1}
        assert sorted(ran) == list(range(3 * round_size))

    asyncio.run(main())
