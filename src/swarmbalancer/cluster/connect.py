"""Opening a swarm's Redis from a store URL: `redis://` or `rediss://` (password, TLS and
options as redis-py reads them), the swarm id from `--swarm-id` or a `?swarm=ID` query, and a
client that rides out a server restart (it reconnects and retries; the callers retry on top).
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from swarmbalancer.errors import ConfigError
from swarmbalancer.store.url import parse_redis_url
from swarmbalancer.store.url import redact as redact  # where the cluster's callers find it

log = logging.getLogger("swarmbalancer.cluster")

#: What a lost or restarting server raises; callers wait and try again.
TRANSIENT: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


def split_store_url(url: str, swarm_id: str | None) -> tuple[str, str]:
    """The Redis URL as redis-py takes it (without `swarm=` or `lease_ttl=`) and the swarm id,
    read by the one parser every store URL goes through (`store.url.parse_redis_url`)."""
    target = parse_redis_url(url, swarm_id=swarm_id)
    return target.url, target.swarm_id


def connect(url: str, *, socket_timeout: float | None = 10.0) -> Redis:
    """An asyncio client for a Redis URL that reconnects with a short exponential backoff.

    Blocking reads (BLMPOP) must block for less than `socket_timeout`. Raises ConfigError
    naming `store` when redis-py cannot read the URL.
    """
    try:
        client = Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=5.0,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 6),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            health_check_interval=30,
        )
        # an option of the URL redis-py does not know fails here, not at the first command
        client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"store: cannot use {redact(url)!r} ({exc})") from None
    return client


async def durability_warnings(client: Redis) -> list[str]:
    """What in the server's settings can lose a swarm's state (`durability_problems`); empty
    when CONFIG GET is refused (managed services)."""
    try:
        settings: dict[Any, Any] = dict(await client.config_get("appendonly"))
        settings.update(await client.config_get("maxmemory-policy"))
    except RedisError:
        return []
    return durability_problems(settings)


def durability_problems(settings: dict[Any, Any]) -> list[str]:
    """From CONFIG GET's answers: `appendonly no` (a restart loses everything since the last
    snapshot) or an eviction policy other than `noeviction` (Redis may delete task rows under
    memory pressure), each as a sentence saying what to set."""
    found = {_text(k): _text(v) for k, v in settings.items()}
    warnings = []
    if found.get("appendonly", "yes") != "yes":
        warnings.append(
            "redis runs with appendonly no: a server restart loses what happened since its "
            "last snapshot (set appendonly yes)"
        )
    policy = found.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        warnings.append(
            f"redis runs with maxmemory-policy {policy}: it may evict a swarm's keys under "
            "memory pressure (set maxmemory-policy noeviction)"
        )
    return warnings


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
