"""The leader's writes to Redis, in order, one round trip at a time, off the event loop's path.

Each round trip is one write of two script calls, on a connection of the writer's own (a
`Link`): the journal (`flush.lua`: the rows of tasks that changed, finished ids, replies, the
report), then the hand-outs queued meanwhile (`lease.lua`: new leases, revocations, voided
ready lists, the count of discarded outcomes). The journal goes first, so a task's row says
running before a worker can take its lease. The scripts are called by SHA (EVALSHA), and loaded
again when the server has lost them (a restart). A round trip that fails on the network is
sent again, marked as a repeat (`JournalBatch.resent`), until it goes; one refused because the
leader lease passed to another process ends the writer (`LeaseLost`): every script checks the
token, so nothing is written after that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from swarmbalancer.cluster.agents import LeaseDesk, LeaseLost, lease_lost
from swarmbalancer.cluster.link import Link, first_error
from swarmbalancer.cluster.scripts import source
from swarmbalancer.store.redis_store import RedisStore

log = logging.getLogger(__name__)


class Writer:
    """Sends the store's journal and the desk's leases, whenever either has something."""

    def __init__(
        self,
        redis: AsyncRedis,
        store: RedisStore,
        clock: Callable[[], float],
        *,
        epoch: int,
        on_lost: Callable[[], None],
    ) -> None:
        self._redis = redis
        self._store = store
        self._clock = clock
        self._epoch = epoch
        self._on_lost = on_lost
        self._desk: LeaseDesk | None = None
        self._link = Link(redis)
        self._flush_sha = _sha(redis, "flush")
        self._lease_sha = _sha(redis, "lease")
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def serve(self, desk: LeaseDesk) -> None:
        self._desk = desk

    def wake(self) -> None:
        """Something waits to be written: send it with the next round trip."""
        if not self._wake.is_set():
            self._idle.clear()
            self._wake.set()

    async def drain(self) -> None:
        """Wait until everything queued so far is written."""
        self.wake()
        await self._idle.wait()

    async def run_forever(self) -> None:
        while True:
            await self._wake.wait()
            # one loop turn first: what the wake-up's own loop turn queues after it (the leases
            # ahead, issued just after a dispatch) goes in this round trip, not the next
            await asyncio.sleep(0)
            self._wake.clear()
            await self._write()
            if not self._wake.is_set():
                self._idle.set()

    async def _write(self) -> None:
        store, keys = self._store, self._store.keys
        batch = store.take_journal(self._clock())
        handout = self._desk.take() if self._desk is not None else None
        if batch is None and handout is None:
            return
        token = store.lease.token
        commands: list[tuple[Any, ...]] = [
            ("EVALSHA", self._flush_sha, len(store.flush_keys), *store.flush_keys, *args)
            for args in (batch.calls if batch is not None else ())
        ]
        if handout is not None:
            lease_keys = (keys.leader, keys.leases, keys.counters)
            args = handout.args(token, self._epoch)
            commands.append(("EVALSHA", self._lease_sha, 3, *lease_keys, *args))
        delay, load = 0.05, False
        while True:
            try:
                if load:  # the server restarted: its script cache is empty
                    loads = [("SCRIPT", "LOAD", source(name)) for name in ("flush", "lease")]
                    first_error(await self._link.call(*loads))
                    load = False
                results = await self._link.call(*commands)
                first_error(results)
                break
            except NoScriptError:
                load = True
            except ResponseError as exc:
                if lease_lost(exc):
                    store.lease.lost.set()
                    self._on_lost()
                    raise LeaseLost(str(exc)) from None
                raise
            except RedisError as exc:  # the server is unreachable: the lease decides
                log.warning("writing to redis: %s; trying again in %.2fs", exc, delay)
                if batch is not None:
                    batch.resent()  # it may have run: no reply is pushed twice
                    commands[: len(batch.calls)] = [
                        ("EVALSHA", self._flush_sha, len(store.flush_keys), *store.flush_keys, *a)
                        for a in batch.calls
                    ]
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
        if batch is not None:
            store.trimmed(batch, results)

    async def aclose(self) -> None:
        """Close its connection (the writer has stopped)."""
        await self._link.aclose()


def _sha(redis: AsyncRedis, name: str) -> str:
    sha: Any = redis.register_script(source(name)).sha
    return str(sha)
