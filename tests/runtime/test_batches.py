"""`submit_many` and `map`: batches with shared keywords, per-item `Job`s, all-or-nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from swarmbalancer import Balancer, Job, QueueFull, Task, TaskFailed, TaskRejected


async def describe(task: Task) -> Any:
    await asyncio.sleep(0)
    if task.payload == "bad":
        raise RuntimeError("bad payload")
    return (task.payload, task.priority.label, task.tenant, task.estimate)


@pytest.mark.timeout(10)
def test_submit_many_applies_shared_keywords_and_a_jobs_own_fields_win() -> None:
    async def main() -> list[Any]:
        lb = Balancer()
        lb.add_agent("a", describe, capacity=4)
        async with lb:
            handles = await lb.submit_many(
                [1, Job(2, priority="high", estimate=0.5), Job(3, tenant="other")],
                tenant="t1",
                estimate=0.1,
            )
            return list(await asyncio.gather(*handles))

    assert asyncio.run(main()) == [
        (1, "normal", "t1", 0.1),
        (2, "high", "t1", 0.5),
        (3, "normal", "other", 0.1),
    ]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("items", "keywords", "named"),
    [
        ([1, Job(2, priority="urgent")], {}, "priority"),
        ([1, 2], {"estimate": float("inf")}, "estimate"),
        ([1, Job(2, task_id="x"), Job(3, task_id="x")], {}, "task_id"),
        ([1, Job(2, affinity=5)], {}, "affinity"),  # type: ignore[arg-type]
        ([1], {"colour": "red"}, "colour"),
    ],
)
def test_a_bad_item_refuses_the_whole_batch_before_accepting_any(
    items: list[Any], keywords: dict[str, Any], named: str
) -> None:
    async def main() -> dict[str, Any]:
        lb = Balancer()
        lb.add_agent("a", describe)
        async with lb:
            with pytest.raises(TaskRejected, match=named):
                await lb.submit_many(items, **keywords)
            with pytest.raises(TaskRejected, match=named):
                async for _ in lb.map(items, **keywords):
                    pass
        return lb.report()

    report = asyncio.run(main())
    assert report["accepted"] == 0


@pytest.mark.timeout(10)
def test_a_batch_larger_than_a_raising_queue_limit_is_refused_whole() -> None:
    async def main() -> dict[str, Any]:
        lb = Balancer({"maxQueueSize": 5, "queueFull": "raise"})
        lb.add_agent("a", describe)
        async with lb:
            with pytest.raises(QueueFull, match="maxQueueSize"):
                await lb.submit_many(range(10))
            await asyncio.gather(*await lb.submit_many(range(4)))
        return lb.report()

    report = asyncio.run(main())
    assert report["accepted"] == 4 and report["completed"] == 4


@pytest.mark.timeout(10)
def test_map_yields_results_in_submission_order_and_raises_a_failure_at_its_position() -> None:
    async def shuffled(task: Task) -> int:
        await asyncio.sleep(0.001 * (10 - int(task.payload) % 10))
        if task.payload == 7:
            raise RuntimeError("seven")
        return int(task.payload) * 2

    async def main() -> tuple[list[int], dict[str, Any]]:
        lb = Balancer({"maxRetries": 0})
        lb.add_agent("a", shuffled, capacity=8)
        got: list[int] = []
        async with lb:
            with pytest.raises(TaskFailed, match="seven"):
                async for value in lb.map(range(20)):
                    got.append(value)
        return got, lb.report()

    got, report = asyncio.run(main())
    assert got == [0, 2, 4, 6, 8, 10, 12]
    assert report["lost"] == 0 and report["open"] == 0
    assert report["completed"] + report["failed"] + report["cancelled"] == 20


@pytest.mark.timeout(20)
def test_map_with_a_queue_limit_submits_lazily_and_keeps_the_queue_bounded() -> None:
    async def main() -> tuple[list[int], int, int]:
        lb = Balancer({"maxQueueSize": 8})
        peak = 0

        async def quick(task: Task) -> int:
            nonlocal peak
            peak = max(peak, lb.outstanding)
            await asyncio.sleep(0)
            return int(task.payload)

        lb.add_agent("a", quick, capacity=2)
        async with lb:
            out = [v async for v in lb.map(range(500))]
        return out, peak, lb.report()["completed"]

    out, peak, completed = asyncio.run(main())
    assert out == list(range(500)) and completed == 500
    assert peak <= 8, "never more tasks in the balancer than the queue limit"


@pytest.mark.timeout(10)
def test_closing_map_early_cancels_what_it_has_not_yielded() -> None:
    async def slowish(task: Task) -> int:
        await asyncio.sleep(0.01)
        return int(task.payload)

    async def main() -> dict[str, Any]:
        lb = Balancer()
        lb.add_agent("a", slowish, capacity=1)
        async with lb:
            results = lb.map(range(30))
            async for value in results:
                if value == 2:
                    break
            await results.aclose()  # type: ignore[attr-defined]
        return lb.report()

    report = asyncio.run(main())
    assert report["cancelled"] > 0 and report["lost"] == 0 and report["open"] == 0
    assert report["completed"] + report["cancelled"] == 30
