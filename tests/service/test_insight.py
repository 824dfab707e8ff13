"""Token usage from HTTP agents in /v1/usage, the report and /metrics; agent metrics,
diagnosis and rebalance routes with their roles."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from servicehelpers import ADMIN, READ, bearer, next_lease, register, serving, with_tokens


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
