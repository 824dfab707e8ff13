"""The leader's Balancer: the embedded one, fed by the inbox instead of `submit`.

Two things differ from an embedded balancer on a durable store. The tasks clients submitted
arrive as rows (`adopt`), already durable, so nothing waits for a flush. And the takeover's
unfinished tasks are re-submitted only once the workers registered in Redis are agents again
(`recover`): a task with an affinity would otherwise be refused for want of an agent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from swarmbalancer.config import BalancerConfig
from swarmbalancer.errors import TaskRejected
from swarmbalancer.model import Task, TaskState
from swarmbalancer.runtime.balancer import Balancer
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.store.redis_store import RedisStore


class ClusterBalancer(Balancer):
    """A Balancer over a `RedisStore` that takes in clients' tasks, at most `backlog` of them
    unfinished at a time (the inbox keeps the rest)."""

    def __init__(
        self, config: BalancerConfig | dict[str, Any] | None, *, store: RedisStore, backlog: int
    ) -> None:
        self._holding = True
        self._backlog = backlog
        self._room = asyncio.Event()
        self._room.set()
        super().__init__(config, store=store)

    #: called after each dispatch (the leader's `Prefetcher`), or None
    after_pump: Callable[[], None] | None = None

    def _pump(self, now: float | None = None) -> None:
        super()._pump(now)
        if self.after_pump is not None and self._loop is not None and not self._after_pending:
            # after the attempts this dispatch started have taken their leases (their Tasks'
            # first steps are scheduled already), so a worker's ready list keeps their order
            self._after_pending = True
            self._loop.call_soon(self._after)

    _after_pending = False

    def _after(self) -> None:
        self._after_pending = False
        if self.after_pump is not None and self._loop is not None:
            self.after_pump()

    def _recover(self) -> None:
        if not self._holding:  # at construction: held until `recover`
            super()._recover()

    def recover(self) -> None:
        """Submit the takeover's unfinished tasks (call it once the workers are agents)."""
        self._holding = False
        super()._recover()
        self._handle_recovered()
        self._pump_soon()

    def adopt(self, tasks: list[Task]) -> None:
        """Accept tasks clients submitted (from `RedisStore.adopt`); one the coordinator refuses
        (an affinity no agent matches, a periodic task edf cannot admit) is recorded failed."""
        self._check_running()
        for task in tasks:
            try:
                self._accept(task)
            except TaskRejected as exc:
                self._refuse(task, exc)
        self._pump_soon()

    def _refuse(self, task: Task, exc: TaskRejected) -> None:
        store = self._store
        with contextlib.suppress(TaskRejected):
            store.put(task)
            store.remove(task.id)
            task.state, task.error = TaskState.FAILED, f"rejected: {exc}"
            task.finished_at = self._now()

    async def room(self) -> None:
        """Wait until fewer than `backlog` accepted tasks are unfinished."""
        while self._outstanding >= self._backlog:
            self._room.clear()
            await self._room.wait()

    def _settled(self, handle: TaskHandle, task: Task) -> None:
        super()._settled(handle, task)
        if self._outstanding < self._backlog:
            self._room.set()
