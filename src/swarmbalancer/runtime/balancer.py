"""The embedded runtime: drives the coordinator from an asyncio event loop with real handlers."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import uuid
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from swarmbalancer.clock import Clock, MonotonicClock
from swarmbalancer.config import BalancerConfig, load_config
from swarmbalancer.coordinator import Coordinator, Outcome
from swarmbalancer.errors import QueueFull, TaskFailed, TaskRejected
from swarmbalancer.model import AgentSpec, Priority, Task, TaskState
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.store.base import Store
from swarmbalancer.store.record import TaskRecord
from swarmbalancer.store.url import open_store

#: A worker Task lets the loop run others after this many tasks in a row that never waited.
_YIELD_EVERY = 16

Handler = Callable[[Task], Awaitable[Any]] | Callable[[Task], Any]


def _finished_handle(task: Task, record: TaskRecord | None = None) -> TaskHandle:
    """A handle for a task accepted earlier that is no longer pending here (its result is what
    a durable store recorded, else gone)."""
    handle = TaskHandle(task)
    failed = task.state is TaskState.FAILED
    result = record.result if record is not None else None
    handle._resolve(
        result, TaskFailed(task.id, task.attempt, task.error or "failed") if failed else None
    )
    return handle


class Balancer:
    """Spreads submitted tasks over registered agents; use it as `async with Balancer(...)`.

    Every decision is the coordinator's; this class only runs handlers, keeps time and wakes the
    coordinator when a timer (retry backoff, rebalancing) is due.
    """

    def __init__(
        self,
        config: BalancerConfig | dict[str, Any] | None = None,
        *,
        store: Store | str | None = None,
        clock: Clock | None = None,
        max_threads: int | None = None,
    ) -> None:
        if isinstance(store, str):  # a URL: memory, sqlite:///path.db
            config = load_config(config)
            store = open_store(store, config)
        self._coord = Coordinator(config, store=store)
        self.config = self._coord.config
        self._clock = clock or MonotonicClock()
        self._now = self._clock.now
        self._bounded = self.config.max_queue_size is not None
        self._handlers: dict[str, tuple[Handler, bool]] = {}
        self._handles: dict[str, TaskHandle] = {}
        self._keyed: dict[str, TaskHandle] = {}
        self._running_tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._max_threads = max_threads
        self._outstanding = 0
        self._drained = asyncio.Event()
        self._space = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pump_pending = False
        self._prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        self._store = self._coord.store
        self._durable = self._store.durable
        self._flushed: list[asyncio.Future[None]] = []  # submits waiting for the next flush
        self._recover()

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start dispatching; `async with` calls this for you."""
        self._loop = asyncio.get_running_loop()
        self._pump()

    async def stop(self, *, drain: bool = True) -> None:
        """Finish (or, with drain=False, cancel) what runs, then release threads and timers."""
        if drain:
            await self.join()
        for task in list(self._running_tasks):
            task.cancel()
        if self._running_tasks:
            await asyncio.gather(*self._running_tasks, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._loop = None
        self._store.flush(self._now())

    def close(self) -> None:
        """Release the store (a durable store's file and lock); results stay readable until."""
        self._store.close()

    async def __aenter__(self) -> Balancer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop(drain=exc_type is None)

    # -- agents -------------------------------------------------------------------------------
    def add_agent(
        self,
        agent_id: str,
        handler: Handler,
        *,
        capacity: int = 1,
        weight: float = 1.0,
        region: str | None = None,
        cost: float = 0.0,
        speed: float = 1.0,
        tags: Iterable[str] = (),
    ) -> None:
        """Register an agent; `handler(task)` may be async or plain (plain runs in a thread)."""
        spec = AgentSpec(
            id=agent_id,
            capacity=capacity,
            weight=weight,
            speed=speed,
            region=region,
            cost=cost,
            tags=frozenset(tags),
        )
        is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            type(handler).__call__
        )
        self._coord.add_agent(spec, self._now())
        self._handlers[agent_id] = (handler, is_async)
        self._pump()

    def remove_agent(self, agent_id: str) -> None:
        """Stop routing to an agent: its queue moves to the others, its running tasks finish."""
        self._coord.remove_agent(agent_id, self._now())
        self._pump()

    # -- tasks --------------------------------------------------------------------------------
    async def submit(
        self,
        payload: Any = None,
        *,
        priority: Priority | str = "normal",
        tenant: str | None = None,
        deadline: float | None = None,
        within: float | None = None,
        estimate: float | None = None,
        affinity: str | Iterable[str] | None = None,
        region: str | None = None,
        idempotency_key: str | None = None,
        task_id: str | None = None,
        max_retries: int | None = None,
        period: float | None = None,
    ) -> TaskHandle:
        """Accept a task and return its handle (the first handle again for a repeated key)."""
        if self._loop is None:
            raise RuntimeError("the balancer is not running: use `async with balancer:` first")
        if idempotency_key is not None and idempotency_key in self._keyed:
            return self._keyed[idempotency_key]
        if self._bounded:
            await self._wait_for_space()
        now = self._now()
        task = Task.create(
            payload,
            now=now,
            priority=priority,
            tenant=tenant,
            deadline=deadline,
            within=within,
            estimate=estimate,
            affinity=affinity,
            region=region,
            idempotency_key=idempotency_key,
            task_id=task_id or f"{self._prefix}-{next(self._ids)}",
            max_retries=self.config.max_retries if max_retries is None else max_retries,
            period=period,
        )
        accepted = self._coord.submit(task, now)
        if accepted is not task:  # the store knew the idempotency key: the first task's handle
            return self._handles.get(accepted.id) or _finished_handle(
                accepted, self._store.result(accepted.id)
            )
        handle = self._track(task)
        if self._durable:  # durable on return: wait for the flush that writes it
            await self._next_flush()
        else:
            self._pump_soon()
        return handle

    def result(self, task_id: str) -> TaskRecord | None:
        """What the store recorded about a task, by id: with a durable store, finished tasks'
        results stay readable for `resultRetention` (also after a restart); None if unknown."""
        return self._store.result(task_id)

    async def join(self) -> None:
        """Wait until every accepted task has completed or failed."""
        while self._outstanding:
            await self._drained.wait()

    def report(self) -> dict[str, Any]:
        """The metrics report: a JSON-serialisable dict (docs/metrics.md)."""
        return self._coord.report()

    @property
    def coordinator(self) -> Coordinator:
        return self._coord

    @property
    def outstanding(self) -> int:
        return self._outstanding

    # -- internals ----------------------------------------------------------------------------
    def _track(self, task: Task) -> TaskHandle:
        handle = TaskHandle(task)
        self._handles[task.id] = handle
        if not self._outstanding:
            self._drained.clear()
        self._outstanding += 1
        if task.idempotency_key is not None:
            self._keyed[task.idempotency_key] = handle
        return handle

    def _recover(self) -> None:
        """Submit again what a durable store found unfinished from a previous run; one now
        rejected (a periodic task without edf) is recorded as failed."""
        now = self._now()
        for task in self._store.take_recovered(now):
            try:
                self._coord.submit(task, now)
            except TaskRejected as exc:
                with contextlib.suppress(TaskRejected):  # else it stays for a later recovery
                    self._store.put(task)
                    task.state, task.error = TaskState.FAILED, f"rejected on recovery: {exc}"
                    self._store.remove(task.id)
                continue
            self._track(task)

    def _next_flush(self) -> asyncio.Future[None]:
        """A future the next pump resolves once its flush has returned (one per waiting submit,
        so cancelling one submit cancels no other)."""
        assert self._loop is not None
        waiter = self._loop.create_future()
        self._flushed.append(waiter)
        self._pump_soon()
        return waiter

    async def _wait_for_space(self) -> None:
        limit = self.config.max_queue_size
        if limit is None:
            return
        if self._coord.queued_total() >= limit:
            self._pump()  # start what can start, so only tasks that truly wait count
        while self._coord.queued_total() >= limit:
            if self.config.queue_full == "raise":
                raise QueueFull(f"maxQueueSize: {limit} tasks already queued")
            self._space.clear()
            await self._space.wait()

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
        if loop is None:
            return
        coord = self._coord
        assignments = coord.dispatch(self._now() if now is None else now)
        for task in coord.take_abandoned():
            self._settle(task, Outcome.FAILED, None, task.error)
        for a in assignments:
            self._running_tasks.add(loop.create_task(self._work(a.task, a.agent.id)))
        if assignments:
            self._space.set()
        self._arm_timer()
        waiters = self._flushed
        try:
            self._store.flush(self._now() if now is None else now)
        except Exception as exc:
            self._flushed = []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            raise
        if waiters:
            self._flushed = []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _work(self, task: Task | None, agent_id: str) -> None:
        """Run `task` on the agent, then whatever the agent should run next in the same slot.

        One asyncio Task serves a slot for as long as its agent has work, so a busy swarm costs
        one handler call per task rather than a new Task; it yields to the loop every few tasks.
        """
        try:
            ran = 0
            now = self._now()
            while task is not None:
                now = await self._attempt(task, agent_id, now)
                ran += 1
                if ran % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                    now = self._now()
                if self._loop is None:
                    return
                task = self._coord.next_for(agent_id, now)
                if task is not None and self._bounded:
                    self._space.set()  # a queued task left its queue: a waiting submit may go
        finally:
            self._running_tasks.discard(asyncio.current_task())

    async def _attempt(self, task: Task, agent_id: str, started: float) -> float:
        """Run one attempt, begun at `started`, and report it to the coordinator; returns the
        time it ended."""
        handler, is_async = self._handlers[agent_id]
        timeout = self.config.task_timeout
        result: Any = None
        error: str | None = None
        limit = asyncio.timeout(timeout) if timeout else None
        try:
            if limit is not None:
                async with limit:
                    result = await self._call(handler, is_async, task)
            else:
                result = await self._call(handler, is_async, task)
        except TimeoutError as exc:
            ours = limit is not None and limit.expired()
            error = f"timeout after {timeout}s" if ours else f"TimeoutError: {exc}"
        except asyncio.CancelledError:
            error = "cancelled"
            now = self._now()
            outcome = self._coord.finish(task, now, ok=False, error=error, duration=now - started)
            self._settle(task, outcome, None, error)
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        now = self._now()
        outcome = self._coord.finish(
            task, now, ok=error is None, error=error, duration=now - started, result=result
        )
        self._settle(task, outcome, result, error)
        self._pump_soon()
        return now

    def _call(self, handler: Handler, is_async: bool, task: Task) -> Awaitable[Any]:
        if is_async:
            return handler(task)
        return asyncio.get_running_loop().run_in_executor(self._threads(), handler, task)

    def _settle(self, task: Task, outcome: Outcome, result: Any, error: str | None) -> None:
        if outcome is Outcome.RETRY:
            return
        handle = self._handles.pop(task.id)
        if outcome is Outcome.DONE:
            handle._resolve(result, None)
        else:
            handle._resolve(None, TaskFailed(task.id, task.attempt, error or "failed"))
        self._outstanding -= 1
        if not self._outstanding:
            self._drained.set()

    def _threads(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self._max_threads, thread_name_prefix="swarmbalancer"
            )
        return self._executor

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
        now = self._now()
        self._coord.tick(now)
        self._pump(now)
