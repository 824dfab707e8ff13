"""The leader's `Taker`: batches off a list, fenced; after a take that emptied the list the next
one waits first (no script call to find the list empty), and takes what came at once."""

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


def test_one_entry_at_a_time_costs_a_wait_and_a_take_and_nothing_is_lost(
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
            got.append(await taker.take())  # not known empty: the script first
            scripts = calls(sync_redis, "evalsha")
            got.append(await taker.take())  # emptied: it waits (in vain), no script call
            assert calls(sync_redis, "evalsha") == scripts
            sync_redis.rpush(K.outcomes, json.dumps({"n": 1}), json.dumps({"n": 2}))
            got.append(await taker.take())  # the wait returns at once, the script takes both
            sync_redis.set(K.leader, "another")
            sync_redis.rpush(K.outcomes, json.dumps({"n": 3}))
            with pytest.raises(LeaseLost):
                await taker.take()
            return got
        finally:
            await redis.aclose()

    assert asyncio.run(main()) == [[{"n": 0}], [], [{"n": 1}, {"n": 2}]]
    assert sync_redis.lrange(K.outcomes, 0, -1) == [b'{"n": 3}']  # fenced: nothing taken
