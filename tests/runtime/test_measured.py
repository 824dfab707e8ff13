"""`report_runtime`: a handler that knows how long its task ran (a remote agent) is learned
from that figure, not from the clock around the call; without it the clock counts."""

from __future__ import annotations

import asyncio

import pytest

from swarmbalancer import Balancer
from swarmbalancer.model import Task
from swarmbalancer.runtime.measured import elapsed, report_runtime


async def remote(task: Task) -> None:
    await asyncio.sleep(0)
    report_runtime(0.25)  # "it ran a quarter of a second over there"


async def failing_remote(task: Task) -> None:
    report_runtime(0.5)
    raise ValueError("no")


async def local(task: Task) -> None:
    await asyncio.sleep(0)


@pytest.mark.timeout(10)
def test_a_reported_runtime_is_the_attempts_duration_for_busy_time_and_speed() -> None:
    async def main() -> tuple[float, float, float]:
        async with Balancer({"strategy": "adaptive"}) as lb:
            lb.add_agent("r", remote)
            await asyncio.gather(*[await lb.submit(n, estimate=0.5) for n in range(4)])
            state = lb._coord.store.agent("r")
            return state.busy_s, state.stats.speed, state.completed

    busy, speed, completed = asyncio.run(main())
    assert completed == 4
    assert busy == pytest.approx(4 * 0.25)
    assert speed > 1.0  # estimate 0.5 done in 0.25: learned faster than the default 1.0


@pytest.mark.timeout(10)
def test_a_failed_attempt_counts_its_reported_runtime_too() -> None:
    async def main() -> float:
        async with Balancer({"strategy": "adaptive", "maxRetries": 0}) as lb:
            lb.add_agent("r", failing_remote)
            handle = await lb.submit(1)
            await asyncio.gather(handle, return_exceptions=True)
            return lb._coord.store.agent("r").busy_s

    assert asyncio.run(main()) == pytest.approx(0.5)


@pytest.mark.timeout(10)
def test_without_a_report_the_clock_around_the_handler_counts() -> None:
    async def main() -> float:
        async with Balancer() as lb:
            lb.add_agent("l", local)
            await asyncio.gather(*[await lb.submit(n) for n in range(3)])
            return lb._coord.store.agent("l").busy_s

    assert asyncio.run(main()) < 0.25 * 3  # nothing reported 0.25: the real, tiny, durations


def test_a_report_speaks_for_one_attempt_and_nonsense_is_ignored() -> None:
    async def main() -> list[float]:
        report_runtime(2.0)
        first = elapsed(10.0, 9.0)
        second = elapsed(10.0, 9.0)
        report_runtime(float("nan"))
        report_runtime(-1.0)
        report_runtime(float("inf"))
        return [first, second, elapsed(10.0, 9.5)]

    assert asyncio.run(main()) == [2.0, 1.0, 0.5]
