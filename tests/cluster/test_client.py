"""`Client` against a real redis-server, the leader played by `FakeLeader` (which runs the
tasks itself here, so no worker process is needed): submits, batches, handles, idempotency,
waiting on others' tasks, dead letters and requeue, and bad input naming its field."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis import Redis

from fakeleader import FakeLeader
from redisserver import RedisServer, free_port
from swarmbalancer import Client, Job, TaskFailed
from swarmbalancer.cluster.client import _calls
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.scripts import source
from swarmbalancer.errors import ConfigError, NotRunning, StoreError, TaskRejected

pytest_plugins = ["edgeredis"]
pytestmark = pytest.mark.timeout(30)
K = SwarmKeys("t1")


def execute(payload: Any) -> tuple[str, Any]:
    """What the fake leader does with a payload: echo it, or as its keys say."""
    if isinstance(payload, dict):
        if payload.get("hold"):
            return "hold", None
        if payload.get("fail"):
            return "failed", "ValueError: nope"
        if payload.get("cancel"):
            return "cancelled", None
    return "done", {"echo": payload}


def run(
    server: RedisServer,
    body: Callable[[Client, FakeLeader], Awaitable[Any]],
    execute: Callable[[Any], tuple[str, Any]] = execute,
    **options: Any,
) -> Any:
    async def main() -> Any:
        async with (
            FakeLeader(server.url, "t1", execute=execute) as leader,
            Client(server.url, "t1", **options) as client,
        ):
            return await body(client, leader)

    return asyncio.run(main())


def script_calls(r: Redis) -> int:
    return int(r.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


def test_submit_resolves_with_the_result_and_result_reads_the_row(server: RedisServer) -> None:
    async def body(client: Client, leader: FakeLeader) -> None:
        handle = await client.submit({"n": 1}, priority="high", tenant="t", estimate=0.5)
        assert await handle == {"echo": {"n": 1}} and handle.created
        record = await client.result(handle.id)
        assert record is not None and record.state == "done" and record.attempt == 1
        assert record.result == {"echo": {"n": 1}} and record.finished_wall is not None
        assert await client.result("no-such-task") is None

    run(server, body)


def test_rows_carry_the_submit_keywords_and_this_clients_id(
    server: RedisServer, sync_redis: Redis
) -> None:
    async def body(client: Client, leader: FakeLeader) -> str:
        handle = await client.submit(
            {"hold": True}, priority="high", tenant="t", within=60, affinity=["eu"],
            region="eu", idempotency_key="k1", max_retries=5, estimate=0.1,
        )  # fmt: skip
        return handle.id

    task_id = run(server, body)
    row = json.loads(sync_redis.hget(K.tasks, task_id))
    assert (row["priority"], row["tenant"], row["affinity"], row["region"]) == (
        1,
        "t",
        ["eu"],
        "eu",
    )
    assert (row["key"], row["max_retries"], row["estimate"]) == ("k1", 5, 0.1)
    assert row["deadline"] == pytest.approx(row["submitted_wall"] + 60)
    assert row["client"] is not None and row["seq"] == 1


def test_submit_many_sends_a_first_call_of_a_hundred_rows_then_calls_of_a_thousand(
    server: RedisServer, sync_redis: Redis
) -> None:
    sync_redis.script_load(source("submit"))

    async def body(client: Client, leader: FakeLeader) -> None:
        before = script_calls(sync_redis)
        handles = await client.submit_many(
            [*range(2499), Job("special", priority="critical")], tenant="t"
        )
        assert script_calls(sync_redis) - before == 4  # 100, 1000, 1000, 400
        results = await asyncio.gather(*handles)
        assert results == [{"echo": i} for i in range(2499)] + [{"echo": "special"}]
        row = json.loads(sync_redis.hget(K.tasks, handles[-1].id))
        assert (row["priority"], row["tenant"]) == (0, "t")

    run(server, body)


def test_concurrent_submits_of_one_loop_iteration_share_script_calls(
    server: RedisServer, sync_redis: Redis
) -> None:
    sync_redis.script_load(source("submit"))

    async def body(client: Client, leader: FakeLeader) -> None:
        before = script_calls(sync_redis)
        handles = await asyncio.gather(*(client.submit(i) for i in range(300)))
        assert script_calls(sync_redis) - before == 2  # the first 100, then the other 200
        before = script_calls(sync_redis)
        handles += await asyncio.gather(*(client.submit(i) for i in range(300, 500)))
        assert script_calls(sync_redis) - before == 1
        assert await asyncio.gather(*handles) == [{"echo": i} for i in range(500)]

    run(server, body)


def test_a_failed_task_raises_task_failed_and_a_cancelled_one_cancelled_error(
    server: RedisServer,
) -> None:
    async def body(client: Client, leader: FakeLeader) -> None:
        failed = await client.submit({"fail": True})
        with pytest.raises(TaskFailed, match="failed after 1 attempt") as info:
            await failed
        assert info.value.task_id == failed.id and info.value.cause == "ValueError: nope"
        cancelled = await client.submit({"cancel": True})
        with pytest.raises(asyncio.CancelledError):
            await cancelled

    run(server, body)


def test_a_repeated_idempotency_key_gives_the_first_tasks_handle(server: RedisServer) -> None:
    async def body(client: Client, leader: FakeLeader) -> None:
        first = await client.submit({"hold": True}, idempotency_key="k")
        again = await client.submit({"other": 1}, idempotency_key="k")
        assert again is first and first.created
        await leader.release(first.id, "once")
        assert await first == "once"
        async with Client(client.url, "t1") as other:  # another client, after it finished
            late = await other.submit({"other": 2}, idempotency_key="k")
            assert late.id == first.id and not late.created
            assert await late == "once"

    run(server, body)


def test_wait_resolves_a_finished_task_at_once_and_another_clients_running_one_when_it_ends(
    server: RedisServer,
) -> None:
    async def body(client: Client, leader: FakeLeader) -> None:
        done = await client.submit(1)
        held = await client.submit({"hold": True})
        await done
        async with Client(client.url, "t1") as other:
            assert await (await other.wait(done.id)) == {"echo": 1}
            watching = await other.wait(held.id)
            assert not watching.done() and not watching.created
            assert await other.wait(held.id) is watching
            await leader.release(held.id, "late")
            assert await asyncio.wait_for(watching, 10) == "late"
            assert await held == "late"

    run(server, body)


def test_wait_on_an_unknown_task_is_refused_naming_task_id(server: RedisServer) -> None:
    async def body(client: Client, leader: FakeLeader) -> None:
        with pytest.raises(TaskRejected, match="task_id: 'nope' is not a task of this swarm"):
            await client.wait("nope")
        with pytest.raises(TaskRejected, match="task_id"):
            await client.wait("")

    run(server, body)


def test_a_client_back_under_its_id_receives_the_outcomes_of_its_earlier_tasks(
    server: RedisServer,
) -> None:
    async def main() -> None:
        async with FakeLeader(server.url, "t1", execute=execute) as leader:
            async with Client(server.url, "t1", client_id="producer-1") as first:
                handle = await first.submit({"hold": True})
            with pytest.raises(NotRunning, match="closed before the task finished"):
                await handle
            async with Client(server.url, "t1", client_id="producer-1") as second:
                again = await second.wait(handle.id)
                assert not again.done()
                await leader.release(handle.id, 42)
                assert await asyncio.wait_for(again, 10) == 42

    asyncio.run(main())


def test_bad_input_is_refused_naming_the_field_and_submits_nothing(
    server: RedisServer, sync_redis: Redis
) -> None:
    async def body(client: Client, leader: FakeLeader) -> None:
        cases: list[tuple[Callable[[], Awaitable[Any]], str]] = [
            (lambda: client.submit(object()), "payload: not JSON-serialisable"),
            (lambda: client.submit("x" * 100), "payload: 102 bytes of JSON exceed"),
            (lambda: client.submit(1, priority="urgent"), "priority: 'urgent' is not one of"),
            (lambda: client.submit(1, deadline=1.0), "deadline: 1.0 is already past"),
            (lambda: client.submit(1, within=-1), "within"),
            (lambda: client.submit(1, max_retries=-1), "max_retries"),
            (lambda: client.submit(1, tenant=3), "tenant"),  # type: ignore[arg-type]
            (lambda: client.submit_many([1, Job(2, priority="nope")]), "priority: 'nope'"),
            (lambda: client.submit_many([1, 2], colour=1), "colour: not a keyword"),
            (lambda: client.submit_many([Job(1, task_id="a"), Job(2, task_id="a")]),
             "task_id: 'a' appears twice in the batch"),
        ]  # fmt: skip
        for call, message in cases:
            with pytest.raises(TaskRejected, match=message):
                await call()
        assert sync_redis.hlen(K.tasks) == 0 and sync_redis.get(K.seq) is None
        await client.submit(1, task_id="mine")
        with pytest.raises(TaskRejected, match="task_id: 'mine' is already in use"):
            await client.submit(2, task_id="mine")

    run(server, body, max_payload_bytes=100)


def test_dead_letters_list_failed_tasks_and_requeue_runs_them_again(
    server: RedisServer, sync_redis: Redis
) -> None:
    healthy = {"yes": False}

    def flaky(payload: Any) -> tuple[str, Any]:
        return ("done", "fixed") if healthy["yes"] else ("failed", "ValueError: broken")

    async def body(client: Client, leader: FakeLeader) -> None:
        handles = await client.submit_many(["a", "b"])
        for handle in handles:
            with pytest.raises(TaskFailed):
                await handle
        letters = await client.dead_letters()
        assert sorted(r.id for r in letters) == sorted(h.id for h in handles)
        assert all(r.state == "failed" and r.error == "ValueError: broken" for r in letters)
        healthy["yes"] = True
        assert await client.requeue([handles[0].id, "not-dead"]) == [handles[0].id]
        record = await client.result(handles[1].id)
        assert record is not None and record.state == "failed"
        await leader.finished_at_least(3)
        again = await client.wait(handles[0].id)
        assert await again == "fixed"
        assert [r.id for r in await client.dead_letters()] == [handles[1].id]
        assert sync_redis.hget(K.counters, "requeued") == b"1"

    run(server, body, execute=flaky)


def test_store_urls_and_ids_are_checked_naming_the_field(server: RedisServer) -> None:
    async def main() -> None:
        async with (
            FakeLeader(server.url, "t1", execute=execute),
            Client(server.url + "?swarm=t1") as client,
        ):
            assert await (await client.submit(5)) == {"echo": 5}
        with pytest.raises(ConfigError, match="swarm_id: 't2' differs"):
            Client(server.url + "?swarm=t1", "t2")
        assert Client(server.url).keys.swarm_id == "default"  # as every store URL reads it
        with pytest.raises(ConfigError, match=r"store: cannot use .*bogus"):
            await Client(server.url + "?bogus=1", "t1").connect()
        with pytest.raises(ConfigError, match="store: 'http://x' is not a redis"):
            Client("http://x", "t1")
        with pytest.raises(ConfigError, match="client_id"):
            Client(server.url, "t1", client_id="a b")
        with pytest.raises(ConfigError, match="store: cannot reach"):
            async with Client(f"redis://127.0.0.1:{free_port()}/0", "t1"):
                pass
        with pytest.raises(NotRunning, match="async with Client"):
            await Client(server.url, "t1").submit(1)

    asyncio.run(main())


def test_a_password_in_the_store_url_never_reaches_an_error_message() -> None:
    with pytest.raises(ConfigError) as info:
        Client("redis://user:s3cret@127.0.0.1:1/0?swarm=t1&bogus", "t1")
    assert "s3cret" not in str(info.value)

    async def main() -> str:
        with pytest.raises(ConfigError) as info:
            async with Client(f"redis://:s3cret@127.0.0.1:{free_port()}/0", "t1"):
                pass
        return str(info.value)

    message = asyncio.run(main())
    assert "s3cret" not in message and ":***@127.0.0.1" in message


def test_a_server_out_of_reach_is_a_store_error_naming_the_store(server: RedisServer) -> None:
    async def main() -> None:
        async with Client(server.url, "t1") as client:
            server.stop()
            with pytest.raises(StoreError, match=r"store: redis at .* is unavailable"):
                await client.submit(1)
            with pytest.raises(StoreError, match="store: redis at"):
                await client.result("x")

    try:
        asyncio.run(main())
    finally:
        server.start()


def test_a_large_batch_starts_with_a_small_call_and_a_small_one_goes_in_one() -> None:
    assert _calls(150) == [(0, 150)]
    assert _calls(201) == [(0, 100), (100, 201)]
    assert _calls(2500) == [(0, 100), (100, 1100), (1100, 2100), (2100, 2500)]
    assert _calls(0) == []
