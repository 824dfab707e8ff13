"""The Redis key layout of one swarm, in one place.

Every key of a swarm starts with `sb:{<swarm id>}:`; the braces are a Redis Cluster hash tag, so
all of a swarm's keys live in one slot and a Lua script may touch any of them. docs/distributed.md
describes what each key holds; every `.lua` file repeats the part it uses in its header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from swarmbalancer.errors import ConfigError

_SWARM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")


def check_swarm_id(swarm_id: str) -> str:
    """The swarm id, or a ConfigError naming `swarm_id` (letters, digits, `.`, `_`, `-`)."""
    if not isinstance(swarm_id, str) or not _SWARM_ID.match(swarm_id):
        raise ConfigError(
            f"swarm_id: {swarm_id!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return swarm_id


def check_agent_id(agent_id: str) -> str:
    """An agent id safe inside a key, or a ConfigError naming `id`."""
    if not isinstance(agent_id, str) or not _AGENT_ID.match(agent_id):
        raise ConfigError(
            f"id: {agent_id!r} must be 1-128 letters, digits, '.', '_', ':', '@' or '-'"
        )
    return agent_id


#: A field lease.lua keeps in `leases`, with a long value, so that Redis stores that hash as a
#: hash table (constant-time lookups) rather than a listpack (scanned on every lookup); not a
#: lease (no lease id starts with "#").
LEASES_PIN = "#hashtable"


@dataclass(frozen=True, slots=True)
class SwarmKeys:
    """The names of one swarm's keys."""

    swarm_id: str

    @property
    def prefix(self) -> str:
        return f"sb:{{{self.swarm_id}}}:"

    @property
    def leader(self) -> str:
        """String: the leader's token, with a TTL (the leader lease)."""
        return self.prefix + "leader"

    @property
    def epoch(self) -> str:
        """Integer: incremented at every takeover; the fencing token of the current leader."""
        return self.prefix + "epoch"

    @property
    def tasks(self) -> str:
        """Hash: task id -> the task's row (JSON), unfinished and retained finished ones."""
        return self.prefix + "tasks"

    @property
    def seq(self) -> str:
        """Integer: the last submission sequence number given out."""
        return self.prefix + "seq"

    @property
    def idem(self) -> str:
        """Hash: idempotency key -> task id."""
        return self.prefix + "idem"

    @property
    def inbox(self) -> str:
        """List: ids of submitted tasks the leader has not taken yet (FIFO: RPUSH, LPOP)."""
        return self.prefix + "inbox"

    @property
    def finished(self) -> str:
        """Sorted set: finished task id -> Unix time it finished (retention trimming)."""
        return self.prefix + "finished"

    @property
    def dead(self) -> str:
        """Sorted set: id of a task that failed after its last retry -> Unix time (dead letters)."""
        return self.prefix + "dead"

    @property
    def agents(self) -> str:
        """Hash: agent id -> the worker's registration (JSON: capacity, region, weight, ...)."""
        return self.prefix + "agents"

    @property
    def beats(self) -> str:
        """Hash: agent id -> Unix time of its last heartbeat (Redis TIME)."""
        return self.prefix + "beats"

    @property
    def events(self) -> str:
        """List: registration notices for the leader (JSON: {"agent": id, "event": ...})."""
        return self.prefix + "events"

    @property
    def leases(self) -> str:
        """Hash: lease id -> "<agent id> <task id> <epoch>" for each attempt handed to a worker
        (and the field `LEASES_PIN`)."""
        return self.prefix + "leases"

    def ready(self, agent_id: str) -> str:
        """List: leases handed to one worker, not taken yet (JSON, see docs)."""
        return f"{self.prefix}ready:{agent_id}"

    @property
    def outcomes(self) -> str:
        """List: outcomes reported by workers under a valid lease, for the leader (JSON)."""
        return self.prefix + "outcomes"

    def reply(self, client_id: str) -> str:
        """List: finished tasks' outcomes for one client's handles (JSON: id, state, result)."""
        return f"{self.prefix}reply:{client_id}"

    @property
    def counters(self) -> str:
        """Hash: counter name -> integer (late results discarded, tasks requeued, ...)."""
        return self.prefix + "counters"

    @property
    def report(self) -> str:
        """String: the leader's latest `report()` (JSON), for any process to read."""
        return self.prefix + "report"
