"""The dashboard's frames: the report's and the diagnosis' own figures, one frame shared per
interval, an interval that stretches when frames are costly, and windowed percentiles read from
the `/metrics` histogram as Prometheus' `histogram_quantile` reads them."""

from __future__ import annotations

import asyncio
import bisect
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicehelpers import doubled, http_agent, register, serving
from swarmbalancer.service.live import DUTY, bucket_quantile
from swarmbalancer.service.metrics import BUCKETS

BOUNDS = [*BUCKETS, math.inf]


def cumulative(values: list[float]) -> list[float]:
    ordered = sorted(values)
    return [float(bisect.bisect_right(ordered, bound)) for bound in BOUNDS]


@given(
    st.lists(st.floats(0, 400, allow_nan=False), min_size=1, max_size=200),
    st.floats(0.001, 1.0),
)
def test_a_bucket_quantile_lies_in_the_bucket_of_the_true_quantile(
    values: list[float], q: float
) -> None:
    estimate = bucket_quantile(q, BOUNDS, cumulative(values))
    assert estimate is not None
    ordered = sorted(values)
    true = ordered[max(0, math.ceil(q * len(ordered)) - 1)]  # nearest rank
    bucket = bisect.bisect_left(BOUNDS, true)
    lower = 0.0 if bucket == 0 else BOUNDS[bucket - 1]
    upper = BOUNDS[bucket]
    if math.isinf(upper):
        assert estimate == BUCKETS[-1]  # beyond the last finite bound: that bound
    else:
        assert lower <= estimate <= upper


@given(st.lists(st.floats(0, 400, allow_nan=False), min_size=1, max_size=100))
def test_bucket_quantiles_grow_with_q(values: list[float]) -> None:
    counts = cumulative(values)
    estimates = [bucket_quantile(q, BOUNDS, counts) for q in (0.1, 0.5, 0.9, 0.95, 0.99, 1.0)]
    assert all(e is not None for e in estimates)
    assert estimates == sorted(estimates)  # type: ignore[type-var]


def test_an_empty_histogram_has_no_quantile() -> None:
    assert bucket_quantile(0.5, BOUNDS, [0.0] * len(BOUNDS)) is None
    assert bucket_quantile(0.5, [], []) is None


@pytest.mark.timeout(15)
def test_a_frame_carries_the_reports_and_the_diagnosis_figures_unchanged() -> None:
    async def main() -> None:
        async with serving() as (app, client):
            service = app.state.service
            await register(client, "a1", capacity=2)
            for n in range(4):
                await client.post("/v1/tasks", json={"payload": {"n": n}, "tenant": "t1"})
            await http_agent(client, "a1", doubled, count=4)
            await service.balancer.join()
            frame = json.loads(service.feed.frame().text)
            report = (await client.get("/v1/report")).json()
            for key, value in frame["totals"].items():
                assert value == report[key], key
            for key, value in frame["run"].items():
                assert value == report[key], key
            rows = {r["id"]: r for r in (await client.get("/v1/agent-metrics")).json()["agents"]}
            for agent in frame["agents"]:
                row = rows[agent["id"]]
                for key in ("capacity", "in_flight", "queued", "completed", "failed", "speed"):
                    assert agent[key] == row[key], key
                assert agent["breaker"] == row["breaker"]
            findings = (await client.get("/v1/diagnosis")).json()["findings"]
            assert [f["summary"] for f in frame["findings"]] == [f["summary"] for f in findings[:5]]
            assert frame["totals"]["completed"] == 4
            assert frame["tokens"] is None

    asyncio.run(main())


@pytest.mark.timeout(15)
def test_streams_share_one_frame_per_interval_and_costly_frames_come_less_often() -> None:
    async def main() -> None:
        async with serving() as (app, _):
            feed = app.state.service.feed
            first = feed.frame()
            assert feed.frame() is first  # within the interval: the same frame, not rebuilt
            assert feed.period == feed.interval
            feed._cost = 1.0  # as if building a frame had taken a second
            assert feed.period == pytest.approx(1.0 / DUTY)
            feed._frame = None
            rebuilt = feed.frame()
            assert rebuilt.seq == 0 and feed.period == feed.interval  # a cheap frame again

    asyncio.run(main())


@pytest.mark.timeout(15)
def test_the_window_reads_rates_and_percentiles_from_counter_and_histogram_differences() -> None:
    async def main() -> None:
        async with serving() as (app, client):
            feed = app.state.service.feed
            empty = json.loads(feed.frame().text)["window"]
            assert empty == {
                "seconds": None,
                "completed_per_s": None,
                "failed_per_s": None,
                "sojourn_ms": None,
            }
            await register(client, "a1", capacity=1)
            for n in range(5):
                await client.post("/v1/tasks", json={"payload": {"n": n}})
            await http_agent(client, "a1", doubled, count=5)
            await app.state.service.balancer.join()
            await asyncio.sleep(feed.interval)
            window = json.loads(feed.frame().text)["window"]
            assert window["seconds"] > 0
            assert window["completed_per_s"] == pytest.approx(5 / window["seconds"])
            assert window["failed_per_s"] == 0
            p50, p99 = window["sojourn_ms"]["p50"], window["sojourn_ms"]["p99"]
            assert 0 < p50 <= p99 <= BUCKETS[-1] * 1000
            assert len(feed.history) == 2

    asyncio.run(main())
