"""Dispatching from the event loop: one coalesced coordinator dispatch per loop iteration, the
worker Tasks it starts, and the coordinator's timers (retry backoff, rebalancing, leases)."""

from __future__ import annotations

import time

from mypy_extensions import mypyc_attr

from swarmbalancer.runtime.worker import Worker


@mypyc_attr(allow_interpreted_subclasses=True)  # Balancer's subclasses
class Pump(Worker):
    """Turns the coordinator's assignments into running worker Tasks, at most once an iteration."""

    def _pump_soon(self) -> None:
        """Dispatch once at the next loop iteration, however many submits and finishes come first.

        Coalescing turns one dispatch per event into one per loop iteration under load.
        """
        if not self._pump_pending and self._loop is not None:
            self._pump_pending = True
            self._loop.call_soon(self._pump_now)

    def _pump_now(self) -> None:
        self._pump_pending = False
        self._pump()

    def _pump(self, now: float | None = None) -> None:
        loop = self._loop
        if loop is None or self._stopping:
            return
        coord = self._coord
        started = time.perf_counter()
        assignments = coord.dispatch(self._now() if now is None else now)
        self.decision_timing.since(started, len(assignments))
        for task in coord.take_abandoned():
            self._abandoned(task)
        for a in assignments:
            self._running_tasks.add(loop.create_task(self._work(a.task, a.agent.id)))
        if assignments:
            self._space.set()
        self._arm_timer()
        self._flush(self._now() if now is None else now)

    def _arm_timer(self) -> None:
        loop = self._loop
        wake = self._coord.next_wakeup()
        if wake == self._timer_at or loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = wake
        if wake is not None:
            delay = max(0.0, wake - self._now())
            self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._stopping:
            return
        now = self._now()
        started = time.perf_counter()
        self._coord.tick(now)
        self.decision_timing.since(started)
        self._pump(now)
