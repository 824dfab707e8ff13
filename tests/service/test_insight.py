"""Token usage from HTTP agents in /v1/usage, the report and /metrics; agent metrics,
diagnosis and rebalance routes with their roles; a slowed store or coordinator named by the
diagnosis from the live timings."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from servicehelpers import ADMIN, READ, bearer, next_lease, register, serving, with_tokens
from swarmbalancer.metrics.timing import RollingTimer
from swarmbalancer.service import ServeSettings


@pytest.mark.timeout(10)
def test_http_agent_usage_is_recorded_and_shown_everywhere() -> None:
    async def main() -> None:
        async with serving(with_tokens()) as (_, client):
            await register(client, "a1")
            empty = await client.get("/v1/usage", headers=bearer(READ))
            assert empty.json() == {"token_usage": None}
            for n in range(2):
                await client.post(
                    "/v1/tasks", json={"payload": n, "tenant": "t1"}, headers=bearer(ADMIN)
                )
                lease = await next_lease(client, "a1")
                usage = {"input_tokens": 100, "output_tokens": 7, "model": "m", "cost": 0.25}
                reply = await client.post(
                    f"/v1/agents/a1/leases/{lease['lease']}",
                    json={"result": n, "usage": usage},
                    headers=bearer(ADMIN),
                )
                assert reply.status_code == 200
            usage = (await client.get("/v1/usage", headers=bearer(READ))).json()["token_usage"]
            assert usage["input_tokens"] == 200 and usage["cost"] == 0.5
            assert usage["per_agent"]["a1"]["output_tokens"] == 14
            assert usage["per_tenant"]["t1"]["reports"] == 2
            report = (await client.get("/v1/report", headers=bearer(READ))).json()
            assert report["token_usage"] == usage
            text = (await client.get("/metrics", headers=bearer(READ))).text
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            agent_in = ("swarmbalancer_agent_tokens_total", (("agent", "a1"), ("kind", "input")))
            assert samples[agent_in] == 200
            model_out = ("swarmbalancer_model_tokens_total", (("kind", "output"), ("model", "m")))
            assert samples[model_out] == 14
            assert samples[("swarmbalancer_model_cost_total", (("model", "m"),))] == 0.5
            rows = (await client.get("/v1/agent-metrics", headers=bearer(READ))).json()
            assert rows["agents"][0]["token_usage"]["input_tokens"] == 200

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_rebalance_plans_for_readers_applies_only_for_admins() -> None:
    async def main() -> None:
        async with serving(with_tokens()) as (_, client):
            plan = await client.post("/v1/rebalance", headers=bearer(READ))
            assert plan.status_code == 200
            assert plan.json() == {"applied": False, "enabled": True, "migrations": []}
            refused = await client.post("/v1/rebalance?apply=true", headers=bearer(READ))
            assert refused.status_code == 403 and "apply" in refused.json()["detail"]
            applied = await client.post("/v1/rebalance?apply=true", headers=bearer(ADMIN))
            assert applied.json()["applied"] is True
            bad = await client.get("/v1/diagnosis?component=memory", headers=bearer(READ))
            assert bad.status_code == 422 and bad.json()["detail"].startswith("component:")
            missing = await client.get("/v1/agent-metrics?agent=zz", headers=bearer(READ))
            assert missing.status_code == 404

    asyncio.run(main())


def slowed(method: Any, seconds: float) -> Any:
    """`method`, sleeping `seconds` first: an injected slow store or coordinator."""

    def slow(*args: Any) -> Any:
        time.sleep(seconds)
        return method(*args)

    return slow


class SlowDecisions(RollingTimer):
    """The balancer's decision timer, each timed decision made to last `seconds` more: a slow
    coordinator, seen where the balancer times it (the compiled Coordinator cannot be patched)."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def since(self, start: float, items: int = 0) -> None:
        time.sleep(self.seconds)
        super().since(start, items)


async def finding(client: Any, component: str, kind: str) -> dict[str, Any]:
    reply = await client.get("/v1/diagnosis", params={"component": component})
    found = [f for f in reply.json()["findings"] if f["kind"] == kind]
    assert len(found) == 1, reply.json()
    return dict(found[0])


@pytest.mark.timeout(20)
def test_a_slowed_store_is_named_with_its_flush_times(tmp_path: Path) -> None:
    async def main() -> None:
        settings = ServeSettings(store=f"sqlite:///{tmp_path / 'swarm.db'}")
        async with serving(settings) as (app, client):
            store = app.state.service.balancer.coordinator.store
            store._rows = slowed(store._rows, 0.06)  # every flush that writes takes >= 60 ms
            for n in range(25):  # each durable submit waits for its own flush
                assert (await client.post("/v1/tasks", json={"payload": n})).status_code == 201
            f = await finding(client, "task-queue", "store-latency")
            assert f["evidence"]["p99_ms"] >= 60 and f["evidence"]["samples"] >= 20
            assert f["evidence"]["rows"] >= 25 and "synchronous" in f["suggestion"]
            assert not [
                x
                for x in (await client.get("/v1/diagnosis")).json()["findings"]
                if x["kind"] == "coordinator-time"
            ]

    asyncio.run(main())


@pytest.mark.timeout(20)
def test_a_slowed_coordinator_is_named_with_its_decision_times() -> None:
    async def main() -> None:
        async with serving() as (app, client):
            app.state.service.balancer.decision_timing = SlowDecisions(0.06)
            for n in range(25):  # each submit is dispatched in its own loop iteration
                assert (await client.post("/v1/tasks", json={"payload": n})).status_code == 201
            f = await finding(client, "swarm-coordination", "coordinator-time")
            assert f["evidence"]["p99_ms"] >= 60 and f["evidence"]["samples"] >= 20
            assert f["severity"] > 0 and "batches" in f["suggestion"]

    asyncio.run(main())
