"""What a service is started with, and the bind check that keeps an open API off the network."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from swarmbalancer.errors import ConfigError
from swarmbalancer.service.auth import TokenTable

if TYPE_CHECKING:
    from swarmbalancer.workload import Workload


@dataclass(frozen=True)
class ServeSettings:
    """The service's own settings; `config` is the balancer's (any form `load_config` takes).

    `max_wait` bounds every long-poll, `heartbeat_timeout` is how long an HTTP agent may stay
    silent (no poll, heartbeat or report) before its leases fail and their tasks are retried.
    `keep_finished` is how many finished tasks stay readable by id (a durable store keeps more).
    `workload` is a workload whose synthetic swarm the service hosts, in a loop (`serve --demo`).
    `max_tenant_labels` bounds the `tenant` label of `/metrics`: the first that many tenants seen
    keep their own label, later ones share `other`. The dashboard's event stream sends a frame
    every `event_interval` seconds and ends after `event_max_s` (the page then reconnects), so a
    server that does not announce its shutdown (see `service/server.py`) never waits on it long.
    """

    host: str = "127.0.0.1"
    port: int = 8787
    store: str | None = None
    config: Any = None
    tokens: TokenTable = field(default_factory=TokenTable)
    max_body_bytes: int = 1 << 20
    max_wait: float = 30.0
    heartbeat_timeout: float = 30.0
    max_agents: int = 1000
    max_batch: int = 10_000
    keep_finished: int = 100_000
    workload: Workload | None = None
    max_tenant_labels: int = 20
    event_interval: float = 0.5
    event_max_s: float = 600.0

    def __post_init__(self) -> None:
        if self.max_tenant_labels < 0:
            raise ConfigError(f"max_tenant_labels: must be >= 0, got {self.max_tenant_labels}")
        for name in ("event_interval", "event_max_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name}: must be a finite number > 0, got {value!r}")


def is_loopback(host: str) -> bool:
    """True for a loopback address or `localhost`; any other name may resolve off this host."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, tokens: TokenTable) -> None:
    """Refuse to serve beyond this host without tokens: the API would be open to anyone."""
    if not tokens and not is_loopback(host):
        raise ConfigError(
            f"host: {host!r} is not a loopback address; give --token-file to serve beyond "
            "this host (without tokens the API is open to anyone who can reach it)"
        )
