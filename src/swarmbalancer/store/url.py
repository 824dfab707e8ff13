"""Store URLs, parsed in one place: `memory`, `sqlite:///path.db[?synchronous=full]` and
`redis://[:password@]host[:port][/db][?swarm=ID&lease_ttl=S]` (or `rediss://` for TLS).

As in SQLAlchemy, `sqlite:///swarm.db` is relative to the working directory and
`sqlite:////var/lib/swarm.db` (four slashes) is absolute. A Redis URL names the server as
redis-py's `from_url` reads it (its other query options, such as `ssl_cert_reqs`, pass
through), plus the swarm (`swarm`, default `default`) and the leader lease's TTL in seconds
(`lease_ttl`, default 10). A malformed URL is a ConfigError naming `store`; a store that cannot
be opened (locked, unreadable, unreachable, its lease held) is a StoreError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from swarmbalancer.config import BalancerConfig
from swarmbalancer.errors import ConfigError
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store.base import Store
from swarmbalancer.store.memory import MemoryStore
from swarmbalancer.store.sqlite import SqliteStore, Synchronous

if TYPE_CHECKING:
    from redis.client import Redis

    from swarmbalancer.store.redis_store import RedisStore

_USAGE = (
    "use memory, sqlite:///relative/path.db, sqlite:////absolute/path.db or "
    "redis://host:port/db?swarm=ID"
)
_OPTIONS = ("synchronous",)
_REDIS_SCHEMES = ("redis", "rediss")


def open_store(url: str, config: BalancerConfig) -> Store:
    """The store a URL names, with the queues, retention and payload limit of `config`."""
    if not isinstance(url, str):
        raise ConfigError(f"store: expected a URL string, got {type(url).__name__}")

    def queue_factory() -> LevelQueue:
        return LevelQueue.from_config(config)

    text = url.strip()
    if text in ("memory", "memory://"):
        return MemoryStore(queue_factory)
    if urlsplit(text).scheme in _REDIS_SCHEMES:
        return open_redis_store(parse_redis_url(text), config)
    path, synchronous = parse_sqlite_url(text)
    return SqliteStore(
        path,
        queue_factory,
        synchronous=synchronous,
        retention=config.result_retention,
        max_payload_bytes=config.max_payload_bytes,
    )


def parse_sqlite_url(url: str) -> tuple[Path, Synchronous]:
    """The file and the `synchronous` level of a `sqlite:///...` URL; ConfigError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ConfigError(f"store: {url!r} is not a known store URL ({_USAGE})")
    if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
        raise ConfigError(f"store: {url!r} names no file ({_USAGE})")
    if parts.fragment:
        raise ConfigError(f"store: {url!r} has a fragment; {_USAGE}")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ConfigError(f"store: {url!r} has a malformed query") from None
    unknown = sorted(set(query) - set(_OPTIONS))
    if unknown:
        raise ConfigError(f"store: unknown option {unknown[0]!r} in {url!r} (known: synchronous)")
    level = query.get("synchronous", ["normal"])[-1].lower()
    if level == "normal":
        synchronous: Synchronous = "normal"
    elif level == "full":
        synchronous = "full"
    else:
        raise ConfigError(f"store: synchronous must be normal or full, got {level!r}")
    path = parts.path[1:]  # sqlite:///x.db -> x.db; sqlite:////abs/x.db -> /abs/x.db
    if path.endswith("/"):
        raise ConfigError(f"store: {url!r} names a directory, not a file")
    return Path(path), synchronous


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What a Redis store URL names: the server (as redis-py's `from_url` takes it), the swarm,
    the leader lease's TTL, and the server as messages show it (no password)."""

    url: str
    swarm_id: str
    lease_ttl: float
    where: str


def redact(url: str) -> str:
    """The URL with its password replaced by `***`, fit for a message or a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def parse_redis_url(url: str, *, swarm_id: str | None = None) -> RedisTarget:
    """A `redis://` or `rediss://` URL's parts, read the same way by every command and API.

    The swarm is the URL's `swarm` or `swarm_id` (a `--swarm-id` option, a Client argument);
    given both, they must agree; given neither, it is `default`. ConfigError naming `store`
    (or `swarm_id`) when anything is malformed.
    """
    from swarmbalancer.cluster.keys import check_swarm_id

    if not isinstance(url, str):
        raise ConfigError(f"store: expected a redis:// URL, got {type(url).__name__}")
    parts = urlsplit(url.strip())
    if parts.scheme not in _REDIS_SCHEMES:
        raise ConfigError(f"store: {redact(url)!r} is not a redis:// or rediss:// URL")
    if parts.fragment:
        raise ConfigError("store: a Redis URL takes no fragment")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        port = parts.port
    except ValueError:
        raise ConfigError("store: the Redis URL is malformed (query or port)") from None
    named = query.pop("swarm", None)
    swarm = named[-1] if named else None
    if swarm is not None and swarm_id is not None and swarm != swarm_id:
        raise ConfigError(
            f"swarm_id: {swarm_id!r} differs from the URL's swarm={swarm!r}; give one"
        )
    ttl_text = query.pop("lease_ttl", ["10"])[-1]
    try:
        lease_ttl = float(ttl_text)
    except ValueError:
        lease_ttl = float("nan")
    if not 0 < lease_ttl < 86_400:
        raise ConfigError(f"store: lease_ttl must be seconds in (0, 86400), got {ttl_text!r}")
    try:
        chosen = swarm_id if swarm_id is not None else swarm
        swarm = check_swarm_id("default" if chosen is None else chosen)
    except ConfigError as exc:
        raise ConfigError(f"store: {exc}") from None
    host = parts.hostname or "localhost"
    shown = f"{parts.scheme}://{host}:{port or 6379}{parts.path or '/0'}?swarm={swarm}"
    rest = urlencode([(k, v) for k, values in query.items() for v in values])
    plain = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, ""))
    return RedisTarget(plain, swarm, lease_ttl, shown)


def redis_client(target: RedisTarget, *, socket_timeout: float = 10.0) -> Redis:
    """A synchronous client for the target's server (ConfigError for options it refuses)."""
    from redis.client import Redis

    try:
        client = Redis.from_url(
            target.url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        pool = client.connection_pool
        pool.connection_class(**pool.connection_kwargs)  # refuses unknown options, connects not
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"store: {target.where}: {exc}") from None
    return client


def open_redis_store(target: RedisTarget, config: BalancerConfig) -> RedisStore:
    """A Redis store that takes the swarm's leader lease itself (embedded use)."""
    from swarmbalancer.store.redis_store import RedisStore

    client = redis_client(target)
    lease_client = redis_client(target, socket_timeout=max(0.2, target.lease_ttl / 3))
    return RedisStore(
        client,
        target.swarm_id,
        lambda: LevelQueue.from_config(config),
        where=target.where,
        lease_ttl=target.lease_ttl,
        lease_client=lease_client,
        retention=config.result_retention,
        max_payload_bytes=config.max_payload_bytes,
    )
