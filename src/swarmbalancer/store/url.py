"""Store URLs, parsed in one place: `memory` and `sqlite:///path.db[?synchronous=full]`.

As in SQLAlchemy, `sqlite:///swarm.db` is relative to the working directory and
`sqlite:////var/lib/swarm.db` (four slashes) is absolute. A malformed URL is a ConfigError naming
`store`; a file that cannot be opened (locked, unreadable) is a StoreError.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from swarmbalancer.config import BalancerConfig
from swarmbalancer.errors import ConfigError
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store.base import Store
from swarmbalancer.store.memory import MemoryStore
from swarmbalancer.store.sqlite import SqliteStore, Synchronous

_USAGE = "use memory, sqlite:///relative/path.db or sqlite:////absolute/path.db"
_OPTIONS = ("synchronous",)


def open_store(url: str, config: BalancerConfig) -> Store:
    """The store a URL names, with the queues, retention and payload limit of `config`."""
    if not isinstance(url, str):
        raise ConfigError(f"store: expected a URL string, got {type(url).__name__}")

    def queue_factory() -> LevelQueue:
        return LevelQueue.from_config(config)

    text = url.strip()
    if text in ("memory", "memory://"):
        return MemoryStore(queue_factory)
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
