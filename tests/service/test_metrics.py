"""`/metrics`: Prometheus text that parses, counters and histograms that move with tasks, and
agent and tenant labels bounded by their caps."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from servicehelpers import doubled, http_agent, register, serving
from swarmbalancer.errors import ConfigError
from swarmbalancer.service import ServeSettings
from swarmbalancer.service.metrics import LabelCap

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    reply = await client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


@pytest.mark.timeout(10)
def test_metrics_parse_and_move_after_tasks() -> None:
    async def main() -> None:
        async with serving() as (_, client):
            await register(client, "a1", capacity=2)
            before = await scrape(client)
            assert before[("swarmbalancer_tasks_completed_total", ())] == 0
            assert before[("swarmbalancer_agent_in_flight", (("agent", "a1"),))] == 0
            closed = (("agent", "a1"), ("state", "closed"))
            assert before[("swarmbalancer_agent_breaker_state", closed)] == 1

            ids = [
                (await client.post("/v1/tasks", json={"payload": {"n": n}})).json()["id"]
                for n in range(3)
            ]
            queued = await scrape(client)
            assert queued[("swarmbalancer_tasks_submitted_total", ())] == 3
            waiting = sum(
                v for (name, _), v in queued.items() if name == "swarmbalancer_queue_depth"
            )
            running = queued[("swarmbalancer_agent_in_flight", (("agent", "a1"),))]
            assert waiting + running == 3

            await http_agent(client, "a1", doubled, count=3)
            cancelled = (await client.post("/v1/tasks", json={"payload": 0})).json()["id"]
            await client.post(f"/v1/tasks/{cancelled}/cancel")
            for task_id in ids:
                await client.get(f"/v1/tasks/{task_id}?wait=5")
            after = await scrape(client)
            assert after[("swarmbalancer_tasks_completed_total", ())] == 3
            assert after[("swarmbalancer_tasks_cancelled_total", ())] == 1
            assert after[("swarmbalancer_tasks_failed_total", ())] == 0
            done = (("outcome", "completed"), ("priority", "normal"), ("tenant", ""))
            assert after[("swarmbalancer_task_sojourn_seconds_count", done)] == 3
            queue = (("priority", "normal"), ("tenant", ""))
            assert after[("swarmbalancer_task_queue_seconds_count", queue)] == 3
            assert ("swarmbalancer_steals_total", ()) in after
            assert ("swarmbalancer_migrations_total", ()) in after

    asyncio.run(main())


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """{label value: summed sample} of one metric (over its other labels)."""
    out: dict[str, float] = {}
    for (metric, labels), value in samples.items():
        if metric == name:
            key = dict(labels)[label]
            out[key] = out.get(key, 0.0) + value
    return out


@pytest.mark.timeout(15)
def test_tasks_are_counted_and_timed_by_tenant_agent_and_level_with_tenants_capped() -> None:
    async def main() -> None:
        async with serving(ServeSettings(max_tenant_labels=2)) as (_, client):
            await register(client, "a1", capacity=1)
            await register(client, "a2", capacity=1)
            tenants = ["t1", "t2", "t1", "t3", "t4", None]
            ids = []
            for n, tenant in enumerate(tenants):
                body = {
                    "payload": {"n": n},
                    "tenant": tenant,
                    "affinity": ["a1" if n % 2 else "a2"],
                }
                if n == 0:
                    body["priority"] = "high"
                ids.append((await client.post("/v1/tasks", json=body)).json()["id"])
            await asyncio.gather(
                http_agent(client, "a1", doubled, count=3),
                http_agent(client, "a2", doubled, count=3),
            )
            for task_id in ids:
                await client.get(f"/v1/tasks/{task_id}?wait=5")
            after = await scrape(client)
            sojourn = "swarmbalancer_task_sojourn_seconds_count"
            assert by_label(after, sojourn, "tenant") == {"t1": 2, "t2": 1, "other": 2, "": 1}
            assert by_label(after, sojourn, "priority") == {"high": 1, "normal": 5}
            queue = by_label(after, "swarmbalancer_task_queue_seconds_count", "tenant")
            assert queue == {"t1": 2, "t2": 1, "other": 2, "": 1}
            run = by_label(after, "swarmbalancer_agent_run_seconds_count", "agent")
            assert run == {"a1": 3, "a2": 3}
            completed = "swarmbalancer_tenant_tasks_completed_total"
            assert by_label(after, completed, "tenant") == {"t1": 2, "t2": 1, "other": 2}
            per_agent = by_label(after, "swarmbalancer_agent_tasks_completed_total", "agent")
            assert per_agent == {"a1": 3, "a2": 3}
            levels = by_label(after, "swarmbalancer_level_tasks_completed_total", "priority")
            assert levels["high"] == 1 and levels["normal"] == 5 and sum(levels.values()) == 6

    asyncio.run(main())


def test_tenants_keep_their_labels_in_submission_order_whatever_order_tasks_finish_in() -> None:
    async def main() -> None:
        async with serving(ServeSettings(max_tenant_labels=2)) as (_, client):
            await register(client, "a1", capacity=1)
            await register(client, "a2", capacity=1)
            # t1 and t3 are submitted first; a1 finishes t3 and t4 before a2 starts on t1
            plan = [("t1", "a2"), ("t3", "a1"), ("t4", "a1"), ("t2", "a2")]
            ids = []
            for n, (tenant, agent) in enumerate(plan):
                body = {"payload": {"n": n}, "tenant": tenant, "affinity": [agent]}
                ids.append((await client.post("/v1/tasks", json=body)).json()["id"])
            await http_agent(client, "a1", doubled, count=2)
            await http_agent(client, "a2", doubled, count=2)
            for task_id in ids:
                await client.get(f"/v1/tasks/{task_id}?wait=5")
            after = await scrape(client)
            sojourn = by_label(after, "swarmbalancer_task_sojourn_seconds_count", "tenant")
            assert sojourn == {"t1": 1, "t3": 1, "other": 2}

    asyncio.run(main())


@given(st.integers(0, 5), st.lists(st.one_of(st.none(), st.text(max_size=3)), max_size=40))
def test_a_label_cap_keeps_the_first_values_seen_and_maps_each_value_for_good(
    limit: int, values: list[str | None]
) -> None:
    cap = LabelCap(limit)
    first = [cap(v) for v in values]
    assert [cap(v) for v in values] == first  # the same value, the same label, every time
    kept = {label for label, v in zip(first, values, strict=True) if label == v}
    assert len(kept) <= limit
    distinct = list(dict.fromkeys(v for v in values if v is not None))
    for v in distinct[:limit]:
        assert cap(v) == v
    for v in distinct[limit:]:
        assert cap(v) == "other"
    assert all(cap(None) == "" for _ in range(2))


def test_a_negative_tenant_label_cap_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"^max_tenant_labels: must be >= 0"):
        ServeSettings(max_tenant_labels=-1)
