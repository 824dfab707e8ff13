"""`/metrics`: Prometheus text that parses, and counters and histograms that move with tasks."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from servicehelpers import doubled, http_agent, register, serving


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
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
            done = (("outcome", "completed"), ("priority", "normal"))
            assert after[("swarmbalancer_task_sojourn_seconds_count", done)] == 3
            assert after[("swarmbalancer_task_queue_seconds_count", (("priority", "normal"),))] == 3
            assert ("swarmbalancer_steals_total", ()) in after
            assert ("swarmbalancer_migrations_total", ()) in after

    asyncio.run(main())
