"""Which workers the leader routes to: registrations from `agents`, notices from `events`,
liveness from `beats` (wire formats: /work/wire-formats.md).

A worker becomes an agent of the leader's Balancer when it registers (a `register` event), or,
at a takeover, when its registration is there (not draining) and its last beat is fresh. A
`drain` stops routing to it (its running tasks finish); `deregister` also fails whatever it
still holds. A worker whose last beat is older than `heartbeat_timeout` is lost: its attempts
fail with `WorkerLost` (and are retried elsewhere) and it stops being routed to; if its beats
come back, it is an agent again. A `register` from a worker the leader still routes to, naming
another process (host and pid), is a restart: the old process's attempts are failed the same
way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from redis.asyncio import Redis as AsyncRedis

from swarmbalancer.cluster.agents import UNREACHABLE, LeaseDesk, RedisAgent, Taker, WorkerLost
from swarmbalancer.cluster.balancer import ClusterBalancer
from swarmbalancer.cluster.keys import SwarmKeys, check_agent_id
from swarmbalancer.errors import SwarmBalancerError

log = logging.getLogger(__name__)

_SPEC = {"capacity": int, "weight": float, "region": str, "cost": float, "speed_hint": float}


class Workers:
    """The leader's view of the swarm's workers, kept in step with Redis."""

    def __init__(
        self,
        balancer: ClusterBalancer,
        desk: LeaseDesk,
        redis: AsyncRedis,
        keys: SwarmKeys,
        *,
        token: str,
        heartbeat_timeout: float,
    ) -> None:
        self.balancer = balancer
        self.desk = desk
        self.keys = keys
        self.heartbeat_timeout = heartbeat_timeout
        self.active: dict[str, RedisAgent] = {}  # routed to now
        self._joined: dict[str, tuple[Any, Any]] = {}  # agent id -> (host, pid) it joined as
        self._redis = redis
        self._token = token
        self._left: set[str] = set()  # drained or deregistered: back only by registering again

    # -- membership ---------------------------------------------------------------------------
    async def load(self) -> None:
        """Take every registered worker with a fresh beat (at a takeover)."""
        await self.check()

    async def check(self) -> None:
        """Declare the workers whose beats stopped lost; take those whose beats are fresh and
        who are not routed to (registered meanwhile, or back after being lost)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.hgetall(self.keys.agents)
            pipe.hgetall(self.keys.beats)
            (seconds, micros), registrations, beats = await pipe.execute()
        now = seconds + micros / 1e6
        fresh = {_text(k) for k, v in beats.items() if now - _number(v) <= self.heartbeat_timeout}
        for agent_id in [a for a in self.active if a not in fresh]:
            self._remove(
                agent_id,
                WorkerLost(f"worker {agent_id!r}: no heartbeat for {self.heartbeat_timeout}s"),
            )
        for raw_id, raw in registrations.items():
            agent_id = _text(raw_id)
            known = agent_id in self.active or agent_id in self._left
            if agent_id in fresh and not known and not _draining(raw):
                self._add(agent_id, raw)

    async def watch(self) -> None:
        """Check liveness a few times per heartbeat timeout (at least once a second)."""
        period = min(1.0, self.heartbeat_timeout / 4)
        while True:
            await asyncio.sleep(period)
            try:
                await self.check()
            except UNREACHABLE as exc:  # no beats to read: nobody is declared lost for it
                log.warning("liveness check: %s", exc)

    async def pump_events(self, wait: float = 1.0) -> None:
        """Take `events` (up to 1000 at a time, blocking while there are none) and apply them
        in order."""
        events = Taker(self._redis, self.keys, self.keys.events, token=self._token, wait=wait)
        try:
            while True:
                taken = await events.take()
                if taken:
                    try:
                        await self.apply(taken)
                    except UNREACHABLE as exc:  # a registration not read: the next check adds it
                        log.warning("events: %s", exc)
        finally:
            events.close()

    async def apply(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            try:
                kind, agent_id = event["event"], str(event["agent"])
            except KeyError:
                log.warning("events: ignored a malformed entry %.80r", event)
                continue
            if kind == "register":
                self._left.discard(agent_id)
                registration = await self._redis.hget(self.keys.agents, agent_id)
                if registration is None:
                    log.warning("worker %r registered without a registration", agent_id)
                elif agent_id not in self.active:
                    self._add(agent_id, registration)
                elif self._joined.get(agent_id) != _process(registration):
                    self._restarted(agent_id, registration)
            elif kind == "drain":
                self._left.add(agent_id)
                self._remove(agent_id, None)
            elif kind == "deregister":
                self._left.add(agent_id)
                self._remove(agent_id, WorkerLost(f"worker {agent_id!r} left holding the lease"))
            else:
                log.warning("events: unknown event %r of worker %r", kind, agent_id)

    # -- the balancer's agents ----------------------------------------------------------------
    def _add(self, agent_id: str, raw: Any) -> None:
        """Make a registered worker an agent; one still retiring from an earlier stint is taken
        at a later check, one whose registration is invalid is left out (and logged)."""
        try:
            known = self.balancer.coordinator.store.agent(agent_id)
        except KeyError:
            known = None
        if known is not None:
            return  # still draining its earlier attempts: a later check takes it
        agent = RedisAgent(agent_id, self.desk)
        try:
            check_agent_id(agent_id)  # no space in it: lease.lua's lines depend on that
            spec = _spec(json.loads(raw))
            self.balancer.add_agent(agent_id, agent, **spec)
        except (ValueError, TypeError, SwarmBalancerError) as exc:
            log.warning("worker %r: registration refused (%s)", agent_id, exc)
            return
        self.active[agent_id] = agent
        self._joined[agent_id] = _process(raw)
        log.info("worker %r joined (capacity %s)", agent_id, spec.get("capacity", 1))

    def _remove(self, agent_id: str, error: BaseException | None) -> None:
        """Stop routing to a worker; with `error`, fail what it holds and void its ready list."""
        self._joined.pop(agent_id, None)
        if self.active.pop(agent_id, None) is not None:
            with contextlib.suppress(SwarmBalancerError):  # already being removed
                self.balancer.remove_agent(agent_id)
        if error is not None:
            failed = self.desk.fail_agent(agent_id, error)
            if failed:
                log.warning("%s: %d attempt(s) failed, to be retried", error, failed)

    def _restarted(self, agent_id: str, raw: Any) -> None:
        """A worker registered again from another process while routed to: the old process's
        attempts are lost."""
        self._joined[agent_id] = _process(raw)
        failed = self.desk.fail_agent(agent_id, WorkerLost(f"worker {agent_id!r} restarted"))
        if failed:
            log.warning("worker %r restarted: %d attempt(s) to retry", agent_id, failed)


def _spec(registration: Any) -> dict[str, Any]:
    """add_agent's keywords from a registration (wire formats); a wrong type is a TypeError."""
    if not isinstance(registration, dict):
        raise TypeError("registration: not a JSON object")
    spec: dict[str, Any] = {}
    for name, kind in _SPEC.items():
        value = registration.get(name)
        if value is None:
            continue
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise TypeError(f"{name}: {value!r} is not a {kind.__name__}")
        spec[name] = value
    return spec


def _draining(raw: Any) -> bool:
    """Does a registration say its worker is draining (taking no new work)?"""
    try:
        registration = json.loads(raw)
    except (TypeError, ValueError):
        return False
    return isinstance(registration, dict) and registration.get("draining") is True


def _process(raw: Any) -> tuple[Any, Any]:
    """(host, pid) of a registration: which process a worker runs in."""
    try:
        registration = json.loads(raw)
    except (TypeError, ValueError):
        return (None, None)
    if not isinstance(registration, dict):
        return (None, None)
    return (registration.get("host"), registration.get("pid"))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
