"""The leader lease of a swarm: one process at a time schedules it (docs/distributed.md).

A process becomes the leader by setting `sb:{ID}:leader` to its token if nobody holds it
(`SET NX PX`); a standby tries again every few hundred milliseconds until the holder's lease
expires. The leader renews the lease every third of its TTL (`leader.lua`, compare and
extend) from a daemon thread, so a busy or paused event loop does not cost the lease while the
process is alive. When a renewal finds another token, or no renewal has succeeded for a whole
TTL (Redis unreachable), the lease is lost: `lost` is set and the `on_lost` callbacks run at
once, and every script the old leader still sends is refused by its fencing check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable

from redis.client import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.scripts import script

log = logging.getLogger(__name__)


class LeaderLease:
    """One process's claim on a swarm's leader key: acquire, renew in a thread, give up."""

    def __init__(
        self, client: Redis, keys: SwarmKeys, ttl: float, *, token: str | None = None
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"lease_ttl: must be > 0 seconds, got {ttl!r}")
        self.keys = keys
        self.ttl = ttl
        self.token = token or uuid.uuid4().hex
        self.lost = threading.Event()
        self._client = client
        self._script = script(client, "leader")
        self._ms = max(1, round(ttl * 1000))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_lost: list[Callable[[], None]] = []
        self._held = False

    @property
    def held(self) -> bool:
        """True from a successful acquire until the lease is lost or given up."""
        return self._held and not self.lost.is_set()

    def acquire(self) -> bool:
        """Take the lease if nobody holds it (one `SET NX PX`); True when it is now ours."""
        if self._client.set(self.keys.leader, self.token, nx=True, px=self._ms):
            self._held = True
            self.lost.clear()
            return True
        return False

    def remaining(self) -> float:
        """Seconds until the current holder's lease expires if it is not renewed (0: none)."""
        ms = self._client.pttl(self.keys.leader)
        return max(0.0, int(ms) / 1000)

    async def wait(self, poll: float | None = None) -> None:
        """Stand by until the lease is ours: sleep until the holder's lease would expire, at
        most `poll` seconds (a tenth of the TTL, at most half a second, so a holder that gives
        the lease up early is noticed soon), then try again. A server out of reach meanwhile
        is logged and tried again."""
        cap = poll if poll is not None else min(0.5, self.ttl / 10)
        # Redis tells no one when a key expires (keyspace notifications are off by default):
        # waiting for the holder's expiry is a timed wait, bounded by its remaining TTL.
        while True:
            try:
                if await asyncio.to_thread(self.acquire):
                    return
                pause = await asyncio.to_thread(self.remaining)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                log.warning("swarm %s: standing by: %s", self.keys.swarm_id, exc)
                pause = 1.0
            await asyncio.sleep(min(cap, pause + 0.005))

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the renewal thread) when the lease is lost; it must be quick
        and thread-safe (`loop.call_soon_threadsafe`, an Event)."""
        self._on_lost.append(callback)

    def start_renewing(self) -> None:
        """Renew the lease every third of its TTL from a daemon thread until `release`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"swarmbalancer-lease-{self.keys.swarm_id}", daemon=True
        )
        self._thread.start()

    def renew(self) -> bool:
        """Extend the lease once; False (and the lease is lost) when another token holds it."""
        if self._script(keys=[self.keys.leader], args=[self.token, self._ms]) == 1:
            return True
        self._lose("another process holds the leader lease")
        return False

    def release(self) -> None:
        """Stop renewing and give the lease up if it is still ours (a standby takes over at
        once instead of waiting for the TTL)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.ttl)
        if self._held and not self.lost.is_set():
            with contextlib.suppress(RedisError):
                self._script(keys=[self.keys.leader], args=[self.token, 0])
        self._held = False

    def _renew_loop(self) -> None:
        interval = self.ttl / 3
        last_ok = time.monotonic()
        wait = interval
        while not self._stop.wait(wait):
            sent = time.monotonic()
            try:
                if not self.renew():
                    return
            except RedisError as exc:
                if time.monotonic() - last_ok >= self.ttl:
                    self._lose(f"no renewal succeeded for {self.ttl}s ({exc})")
                    return
                wait = min(interval, max(0.05, interval / 4))  # try again soon
                continue
            last_ok = sent
            wait = interval

    def _lose(self, why: str) -> None:
        if self.lost.is_set():
            return
        log.warning("swarm %s: leader lease lost: %s", self.keys.swarm_id, why)
        self.lost.set()
        self._stop.set()
        for callback in self._on_lost:
            try:
                callback()
            except Exception:  # a callback's failure must not hide the loss from the others
                log.exception("leader lease: on_lost callback failed")
