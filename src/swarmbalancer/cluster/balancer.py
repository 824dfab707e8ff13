"""The leader's Balancer: the embedded one, fed by the inbox instead of `submit`.

Three things differ from an embedded balancer on a durable store. The tasks clients submitted
arrive as rows (`adopt`), already durable, so nothing waits for a flush. The takeover's
unfinished tasks are re-submitted only once the workers registered in Redis are agents again
(`recover`): a task with an affinity would otherwise be refused for want of an agent. And an
attempt on a worker is a direct attempt (`LeaseDesk.begin`) when nothing about it needs a
handler's Task (no `taskTimeout`): the outcomes that come in one batch are settled in one
pass, each with the calls a worker Task makes for a success (`Coordinator.succeeded`, then
`next_for` its slot), without a Task, a future and a wake-up per attempt. Any other outcome (a
failure, usage to meter, a cancelled handle, a lost worker) goes to a worker Task that runs the
`RedisAgent` handler on it, exactly as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import Any

from swarmbalancer.cluster.agents import Direct, LeaseDesk, RedisAgent
from swarmbalancer.config import BalancerConfig
from swarmbalancer.coordinator import Outcome
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

    # -- direct attempts ----------------------------------------------------------------------
    _desk: LeaseDesk | None = None

    def attach(self, desk: LeaseDesk) -> None:
        """Run attempts on `desk`'s workers as direct attempts where they can be."""
        self._desk = desk
        desk.settle = self._settle_batch
        desk.on_lost = self._lost

    async def _work(self, task: Task | None, agent_id: str) -> None:
        desk = self._desk
        if desk is None or task is None or not self._direct(agent_id):
            await super()._work(task, agent_id)
            return
        me = asyncio.current_task()
        if me is not None:
            self._running_tasks.discard(me)
        self._run_slot(task, agent_id)

    def _direct(self, agent_id: str) -> bool:
        """Can attempts on this agent be direct? (A time limit needs the handler's Task.)"""
        handler = self._handlers.get(agent_id)
        return (
            handler is not None
            and isinstance(handler[0], RedisAgent)
            and not self.config.task_timeout
        )

    def _run_slot(self, task: Task | None, agent_id: str) -> None:
        """Start `task` in a slot of `agent_id` as a direct attempt, and, while its outcome is
        in already (it ran on a lease ahead), settle it and start the slot's next."""
        desk = self._desk
        assert desk is not None
        handles = self._handles
        while task is not None:
            handle = handles.get(task.id)
            if handle is None or handle._cancelling or not self._direct(agent_id):
                self._slow(task, agent_id)
                return
            started = self._now()
            lease_id, early = desk.begin(agent_id, task, started)
            if early is None:
                return
            task = self._complete(lease_id, (task, agent_id, started), early)

    def _settle_batch(self, batch: list[tuple[str, Direct, dict[str, Any]]]) -> None:
        """Settle the outcomes of direct attempts that came in one take, in their order."""
        for lease_id, attempt, outcome in batch:
            nxt = self._complete(lease_id, attempt, outcome)
            if nxt is not None:
                self._run_slot(nxt, attempt[1])
        if not self._pump_pending:
            self._pump_soon()

    def _complete(self, lease_id: str, attempt: Direct, outcome: dict[str, Any]) -> Task | None:
        """One direct attempt's outcome: a success is completed here as a worker Task would
        (`succeeded`, the handle resolved, the slot's next task claimed and returned); anything
        else goes to a worker Task running the handler on it."""
        desk = self._desk
        assert desk is not None
        task, agent_id, started = attempt
        handle = self._handles.get(task.id)
        if handle is not None and handle._cancelling:  # cancelled meanwhile: it ends cancelled
            desk.ended(agent_id, lease_id, revoke=False)  # (its outcome consumed the lease)
            self._slow(task, agent_id)
            return None
        if (
            outcome.get("ok") is not True
            or outcome.get("usage")
            or handle is None
            or self._stopping
        ):
            desk.resolve(agent_id, task, lease_id, outcome)
            self._slow(task, agent_id)
            return None
        desk.ended(agent_id, lease_id, revoke=False)
        now = self._now()
        runtime = outcome.get("runtime")
        # the time the task ran on the worker, as `_settle` reports it to a worker Task
        if (type(runtime) is float or type(runtime) is int) and 0 <= runtime < math.inf:
            duration = float(runtime)
        else:
            duration = now - started
        result = outcome.get("result")
        coord = self._coord
        if coord.succeeded(task, now, duration, result) is Outcome.DONE:
            self._settled(handle, task)
            if not handle.done():
                handle.set_result(result)
        if self._loop is None:
            return None
        nxt = coord.next_for(agent_id, now)
        if nxt is not None and self._bounded:
            self._space.set()  # a queued task left its queue: a waiting submit may go
        return nxt

    def _lost(self, attempts: list[tuple[str, Direct]], error: BaseException) -> None:
        """Direct attempts whose worker was lost: each fails with `error` in a worker Task."""
        desk = self._desk
        assert desk is not None
        for lease_id, (task, agent_id, _) in attempts:
            desk.resolve(agent_id, task, lease_id, error)
            self._slow(task, agent_id)

    def _slow(self, task: Task, agent_id: str) -> None:
        """Run `task`'s attempt in a worker Task (the embedded runtime's path)."""
        loop = self._loop
        if loop is not None:
            self._running_tasks.add(loop.create_task(super()._work(task, agent_id)))

    async def stop(self, *, drain: bool = True) -> None:
        await super().stop(drain=drain)
        if self._desk is not None:
            self._desk.revoke_direct()  # ended as cancelled by the stop
