"""Rolling timers: exact figures over their window, old samples dropped, bounded memory; and the
live balancer and SQLite store feeding them."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmbalancer import Balancer
from swarmbalancer.metrics.snapshot import take_snapshot
from swarmbalancer.metrics.timing import MIN_SPAN_S, RollingTimer


def test_an_empty_timer_has_no_figures() -> None:
    assert RollingTimer().figures(now=10.0) is None


def test_figures_are_exact_over_the_window() -> None:
    timer = RollingTimer(window_s=60.0)
    for i, ms in enumerate([1.0, 2.0, 3.0, 4.0]):
        timer.add(end=100.0 + i, duration=ms / 1000.0, items=2)
    f = timer.figures(now=104.0)
    assert f is not None
    assert (f.samples, f.items) == (4, 8)
    assert f.p50_ms == pytest.approx(2.5)
    assert f.max_ms == pytest.approx(4.0) and f.mean_ms == pytest.approx(2.5)
    assert f.per_item_us == pytest.approx(10.0 / 8 * 1000.0)
    assert f.span_s == pytest.approx(104.0 - 100.0 + 0.001)
    assert f.busy_share == pytest.approx(0.010 / f.span_s)


def test_samples_older_than_the_window_are_dropped_and_the_newest_kept() -> None:
    timer = RollingTimer(window_s=10.0, max_samples=3)
    timer.add(end=0.0, duration=0.5)
    timer.add(end=20.0, duration=0.001)
    f = timer.figures(now=20.0)
    assert f is not None and f.samples == 1 and f.max_ms == pytest.approx(1.0)
    assert f.span_s == MIN_SPAN_S  # one short sample does not read as 100% busy
    for i in range(5):
        timer.add(end=21.0 + i, duration=0.002 * (i + 1))
    f = timer.figures(now=26.0)
    assert f is not None and f.samples == 3 and f.p50_ms == pytest.approx(8.0)
    assert timer.figures(now=100.0) is None


def test_a_negative_or_non_finite_duration_is_refused_naming_it() -> None:
    timer = RollingTimer()
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"^duration:"):
            timer.add(end=1.0, duration=bad)


@given(
    st.lists(
        st.tuples(st.floats(0, 100), st.floats(0, 5), st.integers(0, 50)), min_size=1, max_size=60
    ),
    st.integers(1, 40),
)
def test_figures_stay_ordered_and_bounded(
    calls: list[tuple[float, float, int]], max_samples: int
) -> None:
    timer = RollingTimer(window_s=1000.0, max_samples=max_samples)
    ends = sorted(end for end, _, _ in calls)
    for end, (_, duration, items) in zip(ends, calls, strict=True):
        timer.add(end, duration, items)
    f = timer.figures(now=ends[-1])
    assert f is not None
    assert f.samples == min(len(calls), max_samples)
    assert 0 <= f.p50_ms <= f.p99_ms <= f.max_ms
    assert 0 <= f.mean_ms <= f.max_ms
    assert 0 <= f.busy_share <= 1 and f.span_s >= MIN_SPAN_S


@pytest.mark.timeout(20)
def test_a_live_balancer_times_its_decisions_and_a_sqlite_store_its_flushes(
    tmp_path: Path,
) -> None:
    async def handler(task: object) -> None:
        await asyncio.sleep(0)

    async def run(store: str | None) -> Balancer:
        lb = Balancer({}, store=store)
        lb.add_agent("a", handler, capacity=2)
        async with lb:
            for n in range(30):
                await lb.submit(n)
            await lb.join()
        return lb

    memory = asyncio.run(run(None))
    snapshot = take_snapshot(memory.coordinator, memory.now(), memory.decision_timing)
    assert snapshot.decision is not None and snapshot.decision.samples > 0
    assert 0 < snapshot.decision.items <= 30
    assert snapshot.flush is None  # the memory store writes nothing
    durable = asyncio.run(run(f"sqlite:///{tmp_path / 's.db'}"))
    try:
        flush = take_snapshot(durable.coordinator, durable.now()).flush
        assert flush is not None and flush.samples > 0
        assert flush.items >= 30  # every task's row was written, some more than once
    finally:
        durable.close()
