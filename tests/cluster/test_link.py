"""`Link`: commands sent in one write on a connection of its own, replies in order; an error
reply is redis-py's exception in its place, a blocking command waits its time, a connection the
server dropped is an UNREACHABLE error and the next call opens another."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError

from redisserver import RedisServer
from swarmbalancer.cluster.link import Link, first_error, pack

pytest_plugins = ["edgeredis"]
pytestmark = pytest.mark.timeout(30)


def run(server: RedisServer, body: Any) -> Any:
    async def main() -> Any:
        redis = AsyncRedis.from_url(server.url, socket_timeout=5.0)
        link = Link(redis)
        try:
            return await body(link)
        finally:
            await link.aclose()
            await redis.aclose()

    return asyncio.run(main())


def test_replies_come_in_order_and_an_error_reply_is_its_exception_in_its_place(
    server: RedisServer, sync_redis: Redis
) -> None:
    async def body(link: Link) -> list[Any]:
        return await link.call(
            ("SET", "link:a", "x"),
            ("EVALSHA", "0" * 40, 0),
            ("INCRBY", "link:n", 2),
            ("LPUSH", "link:a", "y"),  # the wrong type
            ("GET", "link:a"),
        )

    replies = run(server, body)
    assert replies[0] == b"OK" and replies[2] == 2 and replies[4] == b"x"
    assert isinstance(replies[1], NoScriptError)
    assert isinstance(replies[3], ResponseError) and "WRONGTYPE" in str(replies[3])
    with pytest.raises(NoScriptError):
        first_error(replies)


def test_a_script_the_server_lost_is_loaded_and_called_in_one_go_and_its_error_is_raised(
    server: RedisServer, sync_redis: Redis
) -> None:
    source = "return ARGV[1] .. redis.call('GET', KEYS[1])"
    sha = sync_redis.script_load(source)
    sync_redis.set("k", "v")

    async def body(link: Link) -> list[Any]:
        first = await link.evalsha(sha, source, ["k"], ["a"])
        sync_redis.script_flush()  # as a restarted server: the script cache is empty
        second = await link.evalsha(sha, source, ["k"], ["b"])
        with pytest.raises(ResponseError):
            await link.evalsha(sha, source, ["k"], [])  # ARGV[1] is nil: a script error
        return [first, second, sync_redis.script_exists(sha)]

    assert run(server, body) == [b"av", b"bv", [True]]


def test_a_blocking_command_waits_its_time_without_a_read_timeout(
    server: RedisServer, sync_redis: Redis
) -> None:
    async def body(link: Link) -> list[Any]:
        link._timeout = 0.1  # shorter than the wait: the wait is added to it
        return await link.call(("BLMOVE", "link:none", "link:none", "LEFT", "LEFT", 0.3), wait=0.3)

    assert run(server, body) == [None]


def test_a_connection_the_server_dropped_is_unreachable_and_the_next_call_reconnects(
    server: RedisServer, sync_redis: Redis
) -> None:
    async def body(link: Link) -> list[Any]:
        await link.call(("CLIENT", "SETNAME", "linked"))
        sync_redis.client_kill_filter(_type="normal", skipme=True)
        with pytest.raises(RedisConnectionError):
            await link.call(("PING",))
        return await link.call(("PING",))

    assert run(server, body) == [b"PONG"]


@given(
    st.lists(
        st.lists(st.one_of(st.text(), st.binary(), st.integers(), st.floats()), max_size=5),
        min_size=1,
        max_size=4,
    )
)
def test_packed_commands_are_what_redis_py_packs(commands: list[list[Any]]) -> None:
    from redis.connection import Connection

    expected = b"".join(Connection().pack_commands([("X", *c) for c in commands]))
    assert pack([("X", *c) for c in commands]) == expected


def test_a_value_of_another_type_is_a_data_error() -> None:
    with pytest.raises(DataError, match="cannot send"):
        pack([("SET", "k", None)])
    with pytest.raises(DataError, match="cannot send bool"):
        pack([("PING",), ("SET", "k", True)])
