"""Reporting outcomes in batches: every outcome ready when the reporter wakes goes out in one
`report.lua` call (in slices of `BATCH`), so a busy worker costs a round trip per batch, not per
task. A lost connection keeps the batch and sends it again once the server answers."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from swarmbalancer.cluster.connect import TRANSIENT
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.link import Link
from swarmbalancer.cluster.scripts import async_script

log = logging.getLogger("swarmbalancer.worker")

#: The most outcomes one script call carries.
BATCH = 1000


class Reporter:
    """Collects outcomes (`add`) and sends them (`run`, a long-lived task)."""

    def __init__(self, client: Redis, keys: SwarmKeys, agent_id: str) -> None:
        self._script = async_script(client, "report")
        self._sha: str = str(self._script.sha)
        self._link = Link(client)  # a connection of its own: no redis-py machinery per report
        self._keys = [keys.leases, keys.outcomes, keys.counters]
        self._agent_id = agent_id
        self._pending: list[str] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.sent = 0
        self.accepted = 0

    def add(self, outcome: str) -> None:
        """Queue one outcome for the next batch."""
        self._pending.append(outcome)
        self._idle.clear()
        self._wake.set()

    async def flushed(self) -> None:
        """Wait until every outcome added so far has been sent."""
        await self._idle.wait()

    @property
    def late(self) -> int:
        """Outcomes the server discarded: their lease had expired or was not this agent's."""
        return self.sent - self.accepted

    async def run(self) -> None:
        """Send batches for as long as the worker lives."""
        try:
            await self._run()
        finally:
            await self._link.aclose()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            for first in range(0, len(batch), BATCH):
                await self._send(batch[first : first + BATCH])
            if not self._pending:
                self._idle.set()

    async def _send(self, outcomes: list[str]) -> None:
        pause = 0.05
        while True:
            try:  # a server that restarted and lost the script is sent it again
                kept = await self._link.evalsha(
                    self._sha, self._script.script, self._keys, (self._agent_id, *outcomes)
                )
            except (RedisError, OSError) as exc:
                # if the server ran the script before the connection broke, sending again
                # finds the leases gone: those outcomes count as late, none is recorded twice.
                # Any other error (the server refusing writes: OOM, read-only) is retried too,
                # loudly: the outcomes are kept until the server takes them.
                level = logging.WARNING if isinstance(exc, TRANSIENT) else logging.ERROR
                log.log(level, "report: %s; retrying in %.2fs", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            self.sent += len(outcomes)
            self.accepted += int(kept)
            if int(kept) < len(outcomes):
                log.warning(
                    "report: %d of %d outcome(s) discarded as late (their lease had expired)",
                    len(outcomes) - int(kept),
                    len(outcomes),
                )
            return
