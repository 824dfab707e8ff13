"""Round trips on a connection of one's own, for the hot loops of the leader and the workers
(the leader's writer and takers, a worker's takes and reports).

redis-py's asyncio client spends 60-120 us of CPU on each round trip besides the socket (the
pool, retries, events, timeouts, and a pipeline's bookkeeping): at a round trip per few dozen
tasks that was a tenth of a process's time. A `Link` packs the commands itself, writes them in
one go and parses the replies with hiredis; the connection is opened by redis-py's own
connection class (so TLS, AUTH, SELECT and the client's settings are as the URL says) and then
driven directly. Any failure (network, timeout, cancellation mid-read) drops the connection,
whose state is then unknown; the next call opens a new one. Errors are redis-py's, so callers
handle them as before: ConnectionError and TimeoutError for the network, and an error reply
as the exception redis-py makes of it (ResponseError, NoScriptError, BusyLoadingError...) in
its place among the replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Bytes read from the socket at a time.
_READ_SIZE = 1 << 16


class _Reply(Exception):
    """An error reply as hiredis hands it over (made a redis-py error by `_error`)."""


class Link:
    """One connection, used by one loop at a time: `call` sends commands in one write and
    returns their replies. `timeout` bounds a reply's wait (the client's socket timeout when
    None); a blocking command's own wait is added per call."""

    def __init__(self, redis: AsyncRedis, *, timeout: float | None = None) -> None:
        pool = redis.connection_pool
        self._pool = pool
        self._timeout = (
            timeout if timeout is not None else pool.connection_kwargs.get("socket_timeout")
        )
        self._conn: AbstractConnection | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser: Any = None

    async def call(self, *commands: Sequence[Any], wait: float = 0.0) -> list[Any]:
        """The replies of `commands`, in order; an error reply is its exception, in its place.
        `wait`: the seconds a blocking command among them may wait."""
        if self._writer is None:
            await self._connect()
        writer = self._writer
        assert writer is not None
        timeout = None if self._timeout is None else self._timeout + wait
        try:
            writer.write(pack(commands))
            async with asyncio.timeout(timeout):
                return [await self._read() for _ in commands]
        except BaseException as exc:
            self.close()
            if isinstance(exc, TimeoutError):
                raise RedisTimeoutError("Timeout reading from the server") from None
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"Error reading from the server: {exc}") from None
            raise

    async def evalsha(
        self, sha: str, source: object, keys: Sequence[Any], args: Sequence[Any]
    ) -> Any:
        """A Lua script's reply, called by SHA; a server that lost the script (NOSCRIPT, after
        a restart) is sent its `source` and the call again in one round trip. An error reply
        is raised."""
        call = ("EVALSHA", sha, len(keys), *keys, *args)
        (reply,) = await self.call(call)
        if isinstance(reply, NoScriptError):
            replies = await self.call(("SCRIPT", "LOAD", source), call)
            first_error(replies)
            reply = replies[1]
        first_error([reply])
        return reply

    async def _read(self) -> Any:
        parser, reader = self._parser, self._reader
        assert reader is not None
        reply = parser.gets()
        while reply is False:
            data = await reader.read(_READ_SIZE)
            if not data:
                raise RedisConnectionError("Connection closed by the server")
            parser.feed(data)
            reply = parser.gets()
        return _error(reply) if isinstance(reply, _Reply) else reply

    async def _connect(self) -> None:
        pool = self._pool
        conn: AbstractConnection = pool.connection_class(**pool.connection_kwargs)
        await conn.connect()  # type: ignore[no-untyped-call]  # TLS, AUTH, SELECT: as the client
        reader, writer = getattr(conn, "_reader", None), getattr(conn, "_writer", None)
        if not isinstance(reader, asyncio.StreamReader) or writer is None:
            await conn.disconnect()
            raise RedisConnectionError("link: this redis-py's connections have no streams")
        self._conn, self._reader, self._writer = conn, reader, writer
        self._parser = hiredis.Reader(replyError=_Reply)

    def close(self) -> None:
        """Drop the connection (the next call opens another)."""
        writer = self._writer
        self._conn = self._reader = self._writer = self._parser = None
        if writer is not None:
            writer.close()

    async def aclose(self) -> None:
        conn = self._conn
        self.close()
        if conn is not None:
            await conn.disconnect()


def first_error(replies: list[Any]) -> None:
    """Raise the first error among `replies` (as a pipeline's `execute` does)."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply


def _error(reply: _Reply) -> Exception:
    """The exception redis-py makes of an error reply (NOSCRIPT a NoScriptError, LOADING a
    BusyLoadingError, which is a ConnectionError: the server is starting, try again)."""
    error: Exception = BaseParser.parse_error(str(reply))  # type: ignore[no-untyped-call]
    return error


def pack(commands: Sequence[Sequence[Any]]) -> bytes:
    """`commands` in the Redis protocol: str as UTF-8, int and float as their text (packed by
    hiredis, in C: a Python loop cost 0.2 us an argument, and a flush sends thousands)."""
    try:
        return b"".join([_pack(tuple(command)) for command in commands])
    except TypeError:
        for command in commands:
            for arg in command:
                if type(arg) not in (bytes, str, int, float):
                    raise DataError(f"link: cannot send {type(arg).__name__} {arg!r}") from None
        raise


_pack = hiredis.pack_command
