"""The Lua scripts of `lua/`, loaded once and called by SHA (EVALSHA, reloaded after a server
restart by redis-py's `Script`)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from redis.asyncio import Redis as AsyncRedis
from redis.client import Redis
from redis.commands.core import AsyncScript, Script


@cache
def source(name: str) -> str:
    """The text of `lua/<name>.lua`, shipped in the package."""
    return resources.files("swarmbalancer.cluster").joinpath("lua", f"{name}.lua").read_text()


def script(client: Redis, name: str) -> Script:
    """A synchronous callable for `lua/<name>.lua` on `client`."""
    return client.register_script(source(name))


def async_script(client: AsyncRedis, name: str) -> AsyncScript:
    """An asyncio callable for `lua/<name>.lua` on `client`."""
    return client.register_script(source(name))
