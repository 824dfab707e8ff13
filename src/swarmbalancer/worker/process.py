"""The worker process: register, then take leases from `ready:<agent>` with BLMPOP (as many as
there are free slots, blocking, never polling), run them, report in batches, heartbeat; on
SIGTERM or SIGINT drain: announce it, finish what was taken and what is left in the ready list,
report, deregister, exit 0. A second signal exits at once (the leader expires its leases).

Every Redis call rides out a server restart: redis-py reconnects and retries, and each loop
here waits and tries again on top, so a worker outlives a restarted redis-server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Any, cast

from redis.asyncio import Redis

from swarmbalancer.cluster.connect import TRANSIENT, connect, durability_warnings, split_store_url
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.link import Link, first_error
from swarmbalancer.worker.attempt import parse_entries
from swarmbalancer.worker.membership import Heartbeat, Membership
from swarmbalancer.worker.options import WorkerOptions
from swarmbalancer.worker.reporter import Reporter
from swarmbalancer.worker.runner import Runner, is_async_handler

log = logging.getLogger("swarmbalancer.worker")

#: How long one BLMPOP blocks; a drain begins within this time of its signal.
BLOCK_SECONDS = 1.0


class Worker:
    """One agent of a swarm as a process; `await Worker(options, handler).run()`."""

    def __init__(self, options: WorkerOptions, handler: Callable[..., Any]) -> None:
        self.options = options.check()
        assert self.options.id is not None
        self.agent_id: str = self.options.id
        self.handler = handler
        self.url, swarm_id = split_store_url(options.store, options.swarm_id)
        self.keys = SwarmKeys(swarm_id)
        self.draining = False
        self.taken = 0
        self._freed = asyncio.Event()
        self._announced: asyncio.Task[None] | None = None
        self._pause = 0.05

    async def run(self) -> int:
        """Serve until drained; returns the exit status (0)."""
        client = connect(self.url)
        loop = asyncio.get_running_loop()
        membership = Membership(client, self.keys, self.options)
        self._on_signals(loop, membership)
        try:
            for warning in await durability_warnings(client):
                log.warning("%s", warning)
            await membership.register()
            log.info(
                "agent %r joined swarm %r (capacity %d, %s handler)",
                self.agent_id,
                self.keys.swarm_id,
                self.options.capacity,
                "async" if is_async_handler(self.handler) else "plain",
            )
            reporter = Reporter(client, self.keys, self.agent_id)
            runner = Runner(
                self.handler,
                agent_id=self.agent_id,
                capacity=self.options.capacity,
                max_result_bytes=self.options.max_result_bytes,
                report=reporter.add,
                freed=self._freed.set,
            )
            sending = loop.create_task(reporter.run())
            heart = Heartbeat(membership)
            heart.start()
            try:
                await self._take(client, runner, reporter, membership, heart)
            finally:
                await heart.stop()
                sending.cancel()  # idle by now: it waits for outcomes, no command in flight
                await asyncio.gather(sending, return_exceptions=True)
                runner.close()
            log.info(
                "agent %r left swarm %r: %d task(s) taken, %d outcome(s) reported, %d late",
                self.agent_id,
                self.keys.swarm_id,
                self.taken,
                reporter.accepted,
                reporter.late,
            )
            return 0
        finally:
            self._off_signals(loop)
            await client.aclose()

    async def _take(
        self,
        client: Redis,
        runner: Runner,
        reporter: Reporter,
        membership: Membership,
        heart: Heartbeat,
    ) -> None:
        """Fill free slots from the ready list until drained and deregistered."""
        ready = self.keys.ready(self.agent_id)
        capacity = self.options.capacity
        link = Link(client)  # a connection of its own: no redis-py machinery per take
        try:
            await self._take_with(
                link, ready, capacity, client, runner, reporter, membership, heart
            )
        finally:
            await link.aclose()

    async def _take_with(
        self,
        link: Link,
        ready: str,
        capacity: int,
        client: Redis,
        runner: Runner,
        reporter: Reporter,
        membership: Membership,
        heart: Heartbeat,
    ) -> None:
        while True:
            self._freed.clear()  # before reading `busy`: a slot freed from now on wakes us
            free = capacity - runner.busy
            if free <= 0:
                await self._freed.wait()
                continue
            if self.draining and runner.busy and not await self._peek(client):
                await self._freed.wait()  # nothing left to take: wait for a running one to end
                continue
            try:
                if self.draining:
                    (got,) = await link.call(("LMPOP", 1, ready, "LEFT", "COUNT", free))
                else:
                    pop = ("BLMPOP", BLOCK_SECONDS, 1, ready, "LEFT", "COUNT", free)
                    (got,) = await link.call(pop, wait=BLOCK_SECONDS)
                first_error([got])
            except TRANSIENT as exc:
                await self._wait_out("take", exc)
                continue
            self._pause = 0.05
            if got:
                self._start(runner, cast(list[bytes], got[1]))
                continue
            if not self.draining or runner.busy:
                continue
            # drained: every taken attempt has ended; report, then leave (or run what is left)
            if self._announced is not None:
                await self._announced
            await reporter.flushed()
            await heart.stop()  # no beat may land after the deregistration
            try:
                left = await membership.deregister()
            except TRANSIENT as exc:
                heart.start()
                await self._wait_out("deregister", exc)
                continue
            if not left:
                return
            heart.start()
            self._start(runner, left)

    async def _peek(self, client: Redis) -> bool:
        """While draining with attempts running: is anything left in the ready list?"""
        try:
            return bool(await client.llen(self.keys.ready(self.agent_id)))
        except TRANSIENT:
            return False

    def _start(self, runner: Runner, entries: list[bytes]) -> None:
        for attempt in parse_entries(entries):
            self.taken += 1
            runner.start(attempt)

    async def _announce_drain(self, membership: Membership) -> None:
        while True:
            try:
                await membership.drain()
                log.info("agent %r draining", self.agent_id)
                return
            except TRANSIENT as exc:
                await self._wait_out("drain", exc)

    async def _wait_out(self, what: str, exc: BaseException) -> None:
        log.warning("%s: redis unavailable (%s); retrying in %.2fs", what, exc, self._pause)
        await asyncio.sleep(self._pause)
        self._pause = min(self._pause * 2, 1.0)

    def _on_signals(self, loop: asyncio.AbstractEventLoop, membership: Membership) -> None:
        def stop(signum: int) -> None:
            if self.draining:
                log.warning("second signal: exiting now; the leader expires this agent's leases")
                os._exit(1)  # threads still running a plain handler cannot hold the exit
            self.draining = True
            log.info("signal %s: draining", signal.Signals(signum).name)
            self._announced = loop.create_task(self._announce_drain(membership))
            self._freed.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop, signum)

    def _off_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
