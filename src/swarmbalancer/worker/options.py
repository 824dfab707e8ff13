"""What a worker is told on its command line, checked once: each bad value is a ConfigError
naming its option."""

from __future__ import annotations

import math
import os
import re
import socket
from dataclasses import dataclass, replace

from swarmbalancer.cluster.keys import check_agent_id
from swarmbalancer.errors import ConfigError

#: The most slots one worker process runs at once (its thread pool for plain handlers).
MAX_CAPACITY = 4096
#: The default limit on a result's JSON, as `maxPayloadBytes` is for payloads.
MAX_RESULT_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """A worker's settings; `check()` returns them validated, with the id filled in."""

    store: str
    handler: str
    capacity: int
    swarm_id: str | None = None
    region: str | None = None
    id: str | None = None
    weight: float = 1.0
    cost: float = 0.0
    speed_hint: float | None = None
    heartbeat: float = 1.0
    max_result_bytes: int = MAX_RESULT_BYTES

    def check(self) -> WorkerOptions:
        """These options with a default id, or a ConfigError naming the first bad one."""
        _whole("--capacity", self.capacity, 1, MAX_CAPACITY)
        _whole("--max-result-bytes", self.max_result_bytes, 1, 1 << 30)
        _positive("--weight", self.weight)
        _positive("--heartbeat", self.heartbeat)
        if self.heartbeat > 60:
            raise ConfigError(f"--heartbeat: at most 60 seconds, got {self.heartbeat!r}")
        if self.speed_hint is not None:
            _positive("--speed-hint", self.speed_hint)
        if isinstance(self.cost, bool) or not isinstance(self.cost, int | float):
            raise ConfigError(f"--cost: {self.cost!r} is not a number")
        if not math.isfinite(self.cost) or self.cost < 0:
            raise ConfigError(f"--cost: must be a finite number >= 0, got {self.cost!r}")
        if self.region is not None and not (isinstance(self.region, str) and self.region):
            raise ConfigError(f"--region: {self.region!r} is not a non-empty string")
        if self.id is None:
            return replace(self, id=default_agent_id())
        try:
            check_agent_id(self.id)
        except ConfigError as exc:
            raise ConfigError(f"--{exc}") from None
        return self


def default_agent_id() -> str:
    """`<host>-<pid>`, with the characters an agent id cannot hold replaced by `-`."""
    host = re.sub(r"[^A-Za-z0-9._:@-]", "-", socket.gethostname()).strip("-.") or "worker"
    return f"{host[:100]}-{os.getpid()}"


def _whole(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: {value!r} is not a whole number")
    if not low <= value <= high:
        raise ConfigError(f"{name}: must be between {low} and {high}, got {value}")


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}: {value!r} is not a number")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}: must be a finite number > 0, got {value!r}")
