"""The live configuration over HTTP: read it, change a live key, refuse the rest by name."""

from __future__ import annotations

import asyncio

import pytest

from servicehelpers import serving


@pytest.mark.timeout(10)
def test_a_config_patch_changes_live_keys_and_refuses_bad_ones_by_name() -> None:
    async def main() -> None:
        async with serving() as (_, client):
            before = (await client.get("/v1/config")).json()
            assert before["strategy"] == "adaptive"
            changed = await client.patch("/v1/config", json={"task_timeout": "2s"})
            assert changed.status_code == 200, changed.text
            assert changed.json()["taskTimeout"] == 2.0
            assert (await client.get("/v1/config")).json()["taskTimeout"] == 2.0

            bad = await client.patch("/v1/config", json={"maxRetries": -1})
            assert bad.status_code == 422
            assert bad.json()["field"] == "maxRetries"
            unknown = await client.patch("/v1/config", json={"stealThresh": 3})
            assert (unknown.status_code, unknown.json()["field"]) == (422, "stealThresh")
            fixed = await client.patch("/v1/config", json={"discipline": "cfs"})
            assert fixed.status_code == 422
            assert fixed.json()["field"] == "discipline"
            assert "cannot change while running" in fixed.json()["detail"]
            not_object = await client.patch("/v1/config", json=[1])
            assert not_object.status_code == 422
            assert (await client.get("/v1/config")).json() == {**before, "taskTimeout": 2.0}

    asyncio.run(main())
