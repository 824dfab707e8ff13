"""A worker's membership of its swarm, through `register.lua`: register, beat, drain and
deregister, with Redis TIME as the clock (machines' clocks never matter)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.scripts import async_script
from swarmbalancer.errors import ConfigError
from swarmbalancer.worker.options import WorkerOptions

log = logging.getLogger("swarmbalancer.worker")

#: A registration of the same id by another process whose last beat is younger than this many
#: heartbeats is alive: registering waits for it to go stale, then gives up.
STALE_BEATS = 3


class Membership:
    """The agent's registration (the `agents` value) and the calls that change it."""

    def __init__(self, client: Redis, keys: SwarmKeys, options: WorkerOptions) -> None:
        assert options.id is not None
        self.agent_id = options.id
        self.heartbeat = options.heartbeat
        self.registration: dict[str, Any] = {
            "id": options.id,
            "capacity": options.capacity,
            "region": options.region,
            "weight": float(options.weight),
            "cost": float(options.cost),
            "speed_hint": None if options.speed_hint is None else float(options.speed_hint),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "draining": False,
        }
        self._script = async_script(client, "register")
        self._keys = [keys.agents, keys.beats, keys.events, keys.ready(options.id)]

    async def _call(self, action: str) -> Any:
        text = json.dumps(self.registration, separators=(",", ":"))
        stale = STALE_BEATS * self.heartbeat
        return await self._script(keys=self._keys, args=[self.agent_id, action, text, stale])

    async def register(self) -> None:
        """Join the swarm. Another live process holding the id (its beats younger than
        `STALE_BEATS` heartbeats) is waited out for as long; after that, a ConfigError naming
        `--id`."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + (STALE_BEATS + 1) * self.heartbeat
        while True:
            answer = await self._call("register")
            if answer == 1:
                return
            age = float(answer[1])
            if loop.time() >= give_up:
                raise ConfigError(
                    f"--id: agent {self.agent_id!r} is registered by another live process "
                    f"(its last beat {age:.1f}s ago); stop it or choose another --id"
                )
            log.warning(
                "agent %r is registered by another process (beat %.1fs ago); waiting",
                self.agent_id,
                age,
            )
            await asyncio.sleep(self.heartbeat)

    async def beat(self) -> None:
        """Record a heartbeat; register again when the server no longer knows the agent."""
        if await self._call("beat") == 0:
            log.warning("agent %r unknown to the server (restarted?): registering again",
                        self.agent_id)  # fmt: skip
            await self._call("register")

    async def drain(self) -> None:
        """Tell the leader to lease nothing more to this agent."""
        self.registration["draining"] = True
        await self._call("drain")

    async def deregister(self) -> list[bytes]:
        """Leave the swarm; when leases are still in the ready list, take them off it and
        return them instead (the agent stays registered until it has run them)."""
        left = await self._call("deregister")
        return list(left)


class Heartbeat:
    """Beats every `heartbeat` seconds while started. `stop()` lets a beat in flight finish
    rather than cancel it (a redis command cancelled mid-flight can leave its connection in an
    unknown state), so no beat can run after the agent deregisters."""

    def __init__(self, membership: Membership) -> None:
        self._membership = membership
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            await task

    async def _run(self) -> None:
        every = self._membership.heartbeat
        while True:
            try:
                await asyncio.wait_for(self._stop.wait(), every)
                return
            except TimeoutError:
                pass
            try:
                await self._membership.beat()
            except (RedisError, OSError) as exc:  # the next beat tries again
                log.warning("heartbeat: %s", exc)
