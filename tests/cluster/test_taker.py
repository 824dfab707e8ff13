"""The leader's `Taker`: batches off a list, fenced; after a take that emptied the list the next
one waits first, pipelined with the script, so what came during the wait is taken in the same
round trip."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from redisserver import RedisServer
from swarmbalancer.cluster.agents import LeaseLost, Taker
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.scripts import source

pytest_plugins = ["edgeredis"]
pytestmark = pytest.mark.timeout(30)

K = SwarmKeys("taker")


def calls(r: Redis, command: str) -> int:
    return int(r.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def test_a_wait_and_its_take_are_one_round_trip_and_nothing_is_lost(
    server: RedisServer, sync_redis: Redis
) -> None:
    sync_redis.set(K.leader, "tok")
    sync_redis.script_load(source("take"))

    async def main() -> list[list[object]]:
        redis = AsyncRedis.from_url(server.url)
        try:
            taker = Taker(redis, K, K.outcomes, token="tok", wait=0.1)
            got = []
            sync_redis.rpush(K.outcomes, json.dumps({"n": 0}))
            got.append(await taker.take())  # not known empty: the script alone
            assert calls(sync_redis, "blmove") == 0
            got.append(await taker.take())  # emptied: it waits (in vain), then the script
            assert calls(sync_redis, "blmove") == 1
            sync_redis.rpush(K.outcomes, json.dumps({"n": 1}), json.dumps({"n": 2}))
            got.append(await taker.take())  # the wait returns at once, the script takes both
            assert calls(sync_redis, "blmove") == 2

            async def late_push() -> None:
                await asyncio.sleep(0.02)
                await redis.rpush(K.outcomes, json.dumps({"n": 3}))

            patient = Taker(redis, K, K.outcomes, token="tok", wait=10.0)
            assert await patient.take() == []  # found empty: its next take waits first
            pushing = asyncio.create_task(late_push())
            got.append(await patient.take())  # woken by the push, taken by the same call
            await pushing
            sync_redis.set(K.leader, "another")
            sync_redis.rpush(K.outcomes, json.dumps({"n": 4}))
            with pytest.raises(LeaseLost):
                await taker.take()
            return got
        finally:
            await redis.aclose()

    assert asyncio.run(main()) == [[{"n": 0}], [], [{"n": 1}, {"n": 2}], [{"n": 3}]]
    assert sync_redis.lrange(K.outcomes, 0, -1) == [b'{"n": 4}']  # fenced: nothing taken


def test_ids_taken_off_the_inbox_come_back_as_their_rows_and_an_id_without_one_is_skipped(
    server: RedisServer, sync_redis: Redis
) -> None:
    sync_redis.set(K.leader, "tok")
    sync_redis.hset(K.tasks, mapping={"a": '{"id":"a"}', "c": '{"id":"c"}'})
    sync_redis.rpush(K.inbox, "a", "b", "c")

    async def main() -> list[tuple[dict[str, object], bytes]]:
        redis = AsyncRedis.from_url(server.url)
        try:
            taker = Taker(redis, K, K.inbox, token="tok", rows=K.tasks, wait=0.1)
            return await taker.take_texts()
        finally:
            await redis.aclose()

    assert asyncio.run(main()) == [({"id": "a"}, b'{"id":"a"}'), ({"id": "c"}, b'{"id":"c"}')]
    assert sync_redis.llen(K.inbox) == 0
