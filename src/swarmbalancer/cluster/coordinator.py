"""`swarmbalancer coordinator`: the process that schedules a Redis swarm while it holds the
leader lease (docs/distributed.md).

It stands by until it wins the lease, then opens the `RedisStore` (the takeover), makes every
registered worker with a fresh beat an agent of a `ClusterBalancer`, re-submits the unfinished
tasks and runs five loops on one asyncio connection pool: the inbox (clients' submissions), the
outcomes workers report, the registration events, the liveness check and the report (written
to `report` every second, for any process to read). Each loop takes up to 1000 entries at a time
and blocks on Redis while there are none, rather than polling. It steps down at once, with
`EXIT_LOST`, when the lease is lost (writing nothing more); when redis-server restarted under it,
it writes what it knows, gives the lease up and exits `EXIT_LOST` too; on SIGTERM or SIGINT it
writes what it knows, gives the lease up (a standby takes over at once) and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from swarmbalancer.cluster.agents import BATCH, UNREACHABLE, LeaseDesk, LeaseLost, Taker
from swarmbalancer.cluster.balancer import ClusterBalancer
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.leader import LeaderLease
from swarmbalancer.cluster.prefetch import Prefetcher
from swarmbalancer.cluster.workers import Workers
from swarmbalancer.cluster.writer import Writer
from swarmbalancer.config import BalancerConfig
from swarmbalancer.errors import StoreError
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store.redis_store import RedisStore
from swarmbalancer.store.url import RedisTarget, parse_redis_url, redis_client

log = logging.getLogger(__name__)

#: The exit status of a coordinator that stepped down: it lost the leader lease, or the server
#: restarted under it (its supervisor starts it again, as a standby).
EXIT_LOST = 3


@dataclass(frozen=True)
class CoordinatorOptions:
    """What `swarmbalancer coordinator` runs with."""

    store: str
    swarm_id: str | None = None
    config: BalancerConfig = field(default_factory=BalancerConfig)
    lease_ttl: float | None = None  # seconds; the URL's lease_ttl (default 10) when None
    heartbeat_timeout: float = 10.0
    backlog: int = 100_000  # unfinished tasks taken from the inbox at most
    report_interval: float = 1.0


async def run_coordinator(
    options: CoordinatorOptions,
    *,
    stop: asyncio.Event | None = None,
    on_state: Callable[[str], None] | None = None,
) -> int:
    """Stand by, lead while the lease is ours, and return the exit status: 0 when stopped
    (SIGTERM or SIGINT, or `stop` set when given), `EXIT_LOST` when the lease was lost.
    `on_state` hears "standby" and "leader"."""
    target = parse_redis_url(options.store, swarm_id=options.swarm_id)
    ttl = options.lease_ttl or target.lease_ttl
    keys = SwarmKeys(target.swarm_id)
    notify = on_state or (lambda state: None)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
    stop = stop or asyncio.Event()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    lease_client = redis_client(target, socket_timeout=max(0.2, ttl / 3))
    lease = LeaderLease(lease_client, keys, ttl)
    try:
        try:
            lease_client.ping()
        except RedisError as exc:  # at start, a wrong URL more likely than an outage
            raise StoreError(f"store: {target.where}: cannot connect ({exc})") from None
        notify("standby")
        log.info("swarm %s: standing by for the leader lease", keys.swarm_id)
        if not await _first(lease.wait(), stop):
            return 0
        leader = Leader(options, target, lease)
        notify("leader")
        return await leader.run(stop)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        lease.release()
        lease_client.close()


class Leader:
    """One stint as the leader: from the takeover to the lease's loss or a signal."""

    def __init__(self, options: CoordinatorOptions, target: RedisTarget, lease: LeaderLease):
        self.options = options
        self.target = target
        self.lease = lease
        self.keys = lease.keys
        self.lost = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> int:
        loop = asyncio.get_running_loop()
        lease, options, config = self.lease, self.options, self.options.config
        lease.on_lost(lambda: _call_soon(loop, self.lost.set))
        lease.start_renewing()
        client = redis_client(self.target)
        self.run_id = client.info("server").get("run_id")
        store = RedisStore(
            client,
            self.keys.swarm_id,
            lambda: LevelQueue.from_config(config),
            where=self.target.where,
            lease=lease,
            retention=config.result_retention,
            max_payload_bytes=config.max_payload_bytes,
        )
        self.store = store
        self.redis = AsyncRedis.from_url(self.target.url, socket_timeout=10.0)
        self.balancer = balancer = ClusterBalancer(config, store=store, backlog=options.backlog)
        self.writer = writer = Writer(
            self.redis, store, balancer.now, epoch=store.epoch, on_lost=self.lost.set
        )
        store.write_behind(writer.wake)
        self.desk = LeaseDesk(
            self.redis,
            self.keys,
            token=lease.token,
            tag=f"{lease.token[:8]}.{store.epoch}.",
            payload_of=store.payload_json,
            clock=balancer.now,
            timeout=lambda: balancer.config.task_timeout,
            wake=writer.wake,
        )
        writer.serve(self.desk)
        self.desk.started_ahead = store.started_ahead
        balancer.attach(self.desk)
        balancer.after_pump = Prefetcher(self.desk, store, config.prefetch)
        self.workers = Workers(
            balancer,
            self.desk,
            self.redis,
            self.keys,
            token=lease.token,
            heartbeat_timeout=options.heartbeat_timeout,
        )
        log.info("swarm %s: leader (epoch %d)", self.keys.swarm_id, store.epoch)
        writing = asyncio.create_task(writer.run_forever())
        loops: list[asyncio.Task[None]] = []
        try:
            await balancer.start()
            await self.workers.load()
            balancer.recover()
            log.info(
                "swarm %s: %d worker(s), %d task(s) taken over",
                self.keys.swarm_id,
                len(self.workers.active),
                balancer.outstanding,
            )
            loops = [asyncio.create_task(c) for c in self._loops(options.report_interval)]
            every = [writing, *loops]
            await _first(asyncio.wait(every, return_when=asyncio.FIRST_COMPLETED), stop, self.lost)
            for task in every:
                error = None if not task.done() or task.cancelled() else task.exception()
                if isinstance(error, LeaseLost):
                    self.lost.set()  # a fenced script refused: another process leads
                    lease.lost.set()
                elif error is not None:
                    raise error
        finally:
            await _cancel(loops)
            await self._stop(writing)
        stepped_down = self.lost.is_set() or lease.lost.is_set() or self.server_restarted
        return EXIT_LOST if stepped_down else 0

    def _loops(self, report_interval: float) -> list[Coroutine[Any, Any, None]]:
        return [
            self.desk.pump_outcomes(),
            self.workers.pump_events(),
            self.workers.watch(),
            self._intake(),
            self._report_forever(report_interval),
        ]

    async def _stop(self, writing: asyncio.Task[None]) -> None:
        """Stop scheduling. Unless the lease is lost, write what is left (the report, the
        stop's journal) and close the store; when it is lost, write nothing more: the new
        leader owns the swarm."""
        balancer, store = self.balancer, self.store
        if self.lost.is_set() or self.lease.lost.is_set():
            store.abandon()
            log.warning("swarm %s: stepping down (the leader lease is lost)", self.keys.swarm_id)
        else:
            self.publish()
        with contextlib.suppress(StoreError):
            await balancer.stop(drain=False)
        if not writing.done() and not store.abandoned:
            drained = asyncio.ensure_future(self.writer.drain())
            await asyncio.wait(
                {drained, writing}, timeout=self.lease.ttl, return_when=asyncio.FIRST_COMPLETED
            )
            drained.cancel()
        await _cancel([writing])
        await self.writer.aclose()
        store.write_behind(None)
        with contextlib.suppress(StoreError):
            store.close()
        await self.redis.aclose()

    # -- the loops ----------------------------------------------------------------------------
    async def _intake(self, wait: float = 1.0) -> None:
        """Take clients' submissions: pop ids from the inbox (blocking, up to 1000 at a time,
        never more than the backlog has room for), read their rows, submit their tasks."""
        balancer, store, keys = self.balancer, self.store, self.keys
        inbox = Taker(
            self.redis, keys, keys.inbox, token=self.lease.token, rows=keys.tasks, wait=wait
        )
        try:
            while True:
                await balancer.room()
                room = min(BATCH, self.options.backlog - balancer.outstanding)
                rows = await inbox.take_texts(room)  # an id without a row (trimmed) is skipped
                if rows:
                    balancer.adopt(store.adopt(rows, balancer.now()))
        finally:
            inbox.close()

    async def _report_forever(self, interval: float) -> None:
        """Store the report every `interval` seconds; step down if the server restarted."""
        while True:
            await asyncio.sleep(interval)
            try:
                info: Any = await self.redis.info("server")
                late = await self.redis.hget(self.keys.counters, "late_results")
            except UNREACHABLE as exc:
                log.warning("report: %s", exc)
                continue
            self._late = int(late or 0)
            if info.get("run_id") != self.run_id:
                self.restarted()
                return  # the leader stops when a loop ends
            self.publish()

    def restarted(self) -> None:
        """The server restarted: it may have lost the latest writes (the AOF's last second,
        or nothing with appendfsync always), leases and inbox entries among them, so what this
        leader holds in memory no longer matches it. Step down as on SIGTERM (write what it
        knows, while its lease still holds, and give the lease up), so that a fresh takeover (a
        standby, or this coordinator started again) rebuilds from what the server kept."""
        log.warning(
            "swarm %s: redis-server restarted (its run id changed): stepping down",
            self.keys.swarm_id,
        )
        self.server_restarted = True

    _late = 0
    server_restarted = False

    def publish(self) -> None:
        """Write the report (late results counted swarm-wide) with the next round trip."""
        report = self.balancer.report()
        report["late_results"] = report.get("late_results", 0) + self._late
        self.store.publish_report(json.dumps(report, separators=(",", ":")))
        self.writer.wake()


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait for them to end. redis-py's asyncio client swallows a
    cancellation now and then (it arrives while a command's reply is read), so a task still
    running after a moment is cancelled again."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    await asyncio.gather(*tasks, return_exceptions=True)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], Any]) -> None:
    """Run `callback` on `loop` (from another thread); nothing when the loop has closed."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback)


async def _first(awaitable: Coroutine[Any, Any, Any], *events: asyncio.Event) -> bool:
    """Await `awaitable` unless one of `events` is set first; True when it completed."""
    main = asyncio.ensure_future(awaitable)
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait([main, *waiters], return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _cancel(waiters)
    if main.done() and not main.cancelled():
        main.result()
        return True
    await _cancel([main])
    return False
