"""The durable store's glue: recovering a previous run's unfinished tasks, flushing once per
pump, and letting submits wait for the flush that makes them durable."""

from __future__ import annotations

import asyncio
import contextlib

from mypy_extensions import mypyc_attr

from swarmbalancer.errors import TaskRejected
from swarmbalancer.model import TaskState
from swarmbalancer.runtime.registry import HandleRegistry


@mypyc_attr(allow_interpreted_subclasses=True)  # Balancer's subclasses
class Durability(HandleRegistry):
    """Recovery at construction and flushes with their waiting submits."""

    def _recover(self) -> None:
        """Submit again what a durable store found unfinished from a previous run (their handles
        are made by `start`); one now rejected (a periodic task without edf) is recorded as
        failed."""
        now = self._now()
        store = self._store
        for task in store.take_recovered(now):
            try:
                self._coord.submit(task, now)
            except TaskRejected as exc:
                with contextlib.suppress(TaskRejected):  # else it stays for a later recovery
                    store.put(task)
                    store.remove(task.id)
                    task.state, task.error = TaskState.FAILED, f"rejected on recovery: {exc}"
                    task.finished_at = now
                continue
            self._unhandled.append(task)
            if not self._outstanding:
                self._drained.clear()
            self._outstanding += 1

    def _handle_recovered(self) -> None:
        """Handles for the recovered tasks, on the loop `start` runs on."""
        loop = self._loop
        assert loop is not None
        tasks, self._unhandled = self._unhandled, []
        for task in tasks:
            if task.id not in self._handles:
                self._handle_for(task, loop)

    def _next_flush(self) -> asyncio.Future[None]:
        """A future the next pump resolves once its flush has returned (one per waiting submit,
        so cancelling one submit cancels no other)."""
        loop = self._loop
        assert loop is not None
        waiter = loop.create_future()
        self._flushed.append(waiter)
        self._pump_soon()
        return waiter

    def _flush(self, now: float) -> None:
        """Make the store's transitions durable, then release the submits waiting for it (with
        the store's error when the flush failed)."""
        waiters, self._flushed = self._flushed, []
        try:
            self._store.flush(now)
        except Exception as exc:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            raise
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
