"""Tasks over HTTP: submit, an HTTP agent serves them, status, long-poll, batches, cancel."""

from __future__ import annotations

import asyncio

import pytest

from servicehelpers import doubled, http_agent, next_lease, register, serving
from swarmbalancer.service import ServeSettings


@pytest.mark.timeout(10)
def test_a_submitted_task_is_run_by_an_http_agent_and_its_result_read_back() -> None:
    async def main() -> None:
        async with serving() as (_, client):
            await register(client, "a1", capacity=2, region="eu", speed_hint=2.0)
            reply = await client.post("/v1/tasks", json={"payload": {"n": 21}, "tenant": "t1"})
            assert reply.status_code == 201, reply.text
            task_id = reply.json()["id"]
            await http_agent(client, "a1", doubled, count=1)
            status = (await client.get(f"/v1/tasks/{task_id}", params={"wait": 5})).json()
            assert status["state"] == "done"
            assert status["result"] == 42
            assert status["agent"] == "a1"
            assert status["tenant"] == "t1"
            report = (await client.get("/v1/report")).json()
            assert report["completed"] == 1

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_a_long_poll_returns_when_the_result_arrives() -> None:
    async def main() -> None:
        async with serving() as (_, client):
            await register(client, "a1")
            task_id = (await client.post("/v1/tasks", json={"payload": {"n": 1}})).json()["id"]
            waiting = asyncio.create_task(client.get(f"/v1/tasks/{task_id}?wait=8"))
            lease = await next_lease(client, "a1")
            assert not waiting.done()  # it waits for the outcome, not for the bound
            await client.post(f"/v1/agents/a1/leases/{lease['lease']}", json={"result": "ok"})
            status = (await waiting).json()
            assert (status["state"], status["result"]) == ("done", "ok")

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_a_batch_is_submitted_in_order_with_shared_and_own_options() -> None:
    async def main() -> None:
        async with serving() as (_, client):
            body = {
                "items": [{"payload": {"n": i}} for i in range(3)]
                + [{"payload": {"n": 3}, "priority": "high"}],
                "options": {"tenant": "t9", "priority": "low"},
            }
            reply = await client.post("/v1/tasks/batch", json=body)
            assert reply.status_code == 201, reply.text
            tasks = reply.json()["tasks"]
            assert [t["priority"] for t in tasks] == ["low", "low", "low", "high"]
            assert {t["tenant"] for t in tasks} == {"t9"}
            await register(client, "a1", capacity=4)
            await http_agent(client, "a1", doubled, count=4)
            for n, task in enumerate(tasks):
                status = (await client.get(f"/v1/tasks/{task['id']}?wait=5")).json()
                assert status["result"] == 2 * n

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_cancel_removes_a_waiting_task_and_withdraws_a_running_ones_lease() -> None:
    async def main() -> None:
        async with serving() as (_, client):
            waiting = (await client.post("/v1/tasks", json={"payload": 1})).json()["id"]
            reply = await client.post(f"/v1/tasks/{waiting}/cancel")
            assert reply.json()["state"] == "cancelled"
            await register(client, "a1")
            running = (await client.post("/v1/tasks", json={"payload": 2})).json()["id"]
            lease = await next_lease(client, "a1")
            assert (await client.post(f"/v1/tasks/{running}/cancel")).status_code == 200
            status = (await client.get(f"/v1/tasks/{running}?wait=5")).json()
            assert status["state"] == "cancelled"
            late = await client.post(f"/v1/agents/a1/leases/{lease['lease']}", json={"result": 1})
            assert late.status_code == 404
            assert late.json()["field"] == "lease_id"
            assert (await client.get("/v1/report")).json()["cancelled"] == 2

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_an_error_report_is_retried_and_a_non_retryable_one_fails_the_task() -> None:
    async def main() -> None:
        async with serving(ServeSettings(config={"maxRetries": 3, "retryBackoff": 0})) as (
            _,
            client,
        ):
            await register(client, "a1")
            task_id = (await client.post("/v1/tasks", json={"payload": 1})).json()["id"]
            first = await next_lease(client, "a1")
            await client.post(f"/v1/agents/a1/leases/{first['lease']}", json={"error": "boom"})
            second = await next_lease(client, "a1")
            assert second["task"]["id"] == task_id
            assert second["lease"] != first["lease"]
            await client.post(
                f"/v1/agents/a1/leases/{second['lease']}",
                json={"error": "bad input", "retryable": False, "usage": {"input_tokens": 5}},
            )
            status = (await client.get(f"/v1/tasks/{task_id}?wait=5")).json()
            assert status["state"] == "failed"
            assert "bad input" in status["error"]
            assert status["attempt"] == 2

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_a_silent_agent_loses_its_lease_and_the_attempt_fails() -> None:
    async def main() -> None:
        settings = ServeSettings(heartbeat_timeout=0.2, config={"maxRetries": 0})
        async with serving(settings) as (_, client):
            await register(client, "a1")
            task_id = (await client.post("/v1/tasks", json={"payload": 1})).json()["id"]
            lease = await next_lease(client, "a1")  # ... and then silence past the timeout
            status = (await client.get(f"/v1/tasks/{task_id}?wait=5")).json()
            assert status["state"] == "failed"
            assert "agent 'a1': no poll, heartbeat or report for 0.2s" in status["error"]
            late = await client.post(f"/v1/agents/a1/leases/{lease['lease']}", json={})
            assert late.status_code == 404

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_an_agent_that_polls_or_heartbeats_keeps_its_lease() -> None:
    async def main() -> None:
        settings = ServeSettings(heartbeat_timeout=1.0, config={"maxRetries": 0})
        async with serving(settings) as (_, client):
            await register(client, "a1", capacity=2)
            task_id = (await client.post("/v1/tasks", json={"payload": 1})).json()["id"]
            lease = await next_lease(client, "a1")
            empty = await client.get("/v1/agents/a1/next", params={"wait": 1.2})
            assert empty.status_code == 204  # polling past the timeout: still alive
            for _ in range(5):
                await asyncio.sleep(0.3)
                assert (await client.post("/v1/agents/a1/heartbeat")).status_code == 200
            done = await client.post(f"/v1/agents/a1/leases/{lease['lease']}", json={"result": 7})
            assert done.status_code == 200
            status = (await client.get(f"/v1/tasks/{task_id}?wait=5")).json()
            assert (status["state"], status["result"]) == ("done", 7)

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_bad_task_fields_are_422s_naming_the_field() -> None:
    async def main() -> None:
        async with serving() as (_, client):
            reply = await client.post("/v1/tasks", json={"payload": 1, "priority": "urgent"})
            assert reply.status_code == 422
            assert reply.json()["detail"][0]["loc"] == ["body", "priority"]
            reply = await client.post("/v1/tasks", json={"payload": 1, "estimate": -1})
            assert reply.status_code == 422
            assert reply.json()["field"] == "estimate"
            reply = await client.post("/v1/tasks", json={"payload": 1, "colour": "red"})
            assert reply.status_code == 422
            assert reply.json()["detail"][0]["loc"] == ["body", "colour"]
            missing = await client.get("/v1/tasks/nope")
            assert (missing.status_code, missing.json()["detail"]) == (
                404,
                "task_id: no task 'nope' is known",
            )

    asyncio.run(main())
