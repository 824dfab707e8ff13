"""The embedded runtime: drives the coordinator from an asyncio event loop with real handlers."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from swarmbalancer.clock import Clock, MonotonicClock
from swarmbalancer.config import BalancerConfig, load_config
from swarmbalancer.coordinator import Coordinator, Outcome
from swarmbalancer.errors import AgentError, QueueFull, TaskFailed, TaskRejected
from swarmbalancer.model import AgentSpec, Priority, Task, TaskState
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.runtime.jobs import check_keywords, merged
from swarmbalancer.runtime.outcomes import Failure, classify
from swarmbalancer.store.base import Store
from swarmbalancer.store.record import TaskRecord
from swarmbalancer.store.url import open_store

#: Submits in a row after which `submit` lets the loop run (so workers start during a burst).
_SUBMIT_STREAK = 32

#: A worker Task lets the loop run others after this many tasks in a row that never waited.
_YIELD_EVERY = 16
#: The most attempt errors a TaskFailed keeps (the newest).
_KEEP_ERRORS = 16

Handler = Callable[[Task], Awaitable[Any]] | Callable[[Task], Any]


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
        self._non_retryable = frozenset(self.config.non_retryable)
        self._handlers: dict[str, tuple[Handler, bool]] = {}
        self._handles: dict[str, TaskHandle] = {}
        self._keyed: OrderedDict[str, TaskHandle] = OrderedDict()
        self._key_limit: int = getattr(self._coord.store, "remember_keys", 100_000)
        self._running_tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._executor: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._max_threads = max_threads
        self._plain_capacity = 0  # total capacity of agents with plain handlers, ever added
        self._outstanding = 0
        self._drained = asyncio.Event()
        self._space = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pump_pending = False
        self._prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        self._streak = 0  # submits since the last one that let the loop run
        self._store = self._coord.store
        self._durable = self._store.durable
        self._flushed: list[asyncio.Future[None]] = []  # submits waiting for the next flush
        self._unhandled: list[Task] = []  # recovered tasks whose handles `start` makes
        self._recover()

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start dispatching; `async with` calls this for you."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._handle_recovered()
        self._pump()

    async def stop(self, *, drain: bool = True) -> None:
        """Finish (or, with drain=False, cancel) every task, then release threads and timers.

        Without draining, running handlers get CancelledError and every task still waiting is
        cancelled: each handle ends cancelled and the report counts them as `cancelled`. A plain
        handler's thread cannot be stopped; the balancer does not wait for it. A durable store
        does not record these cancellations: the tasks stay unfinished in its file, for the next
        balancer on it to recover.
        """
        if drain:
            await self.join()
        self._stopping = True
        self._flush(self._now())  # what happened so far is durable; what follows is stopping
        for task in list(self._running_tasks):
            task.cancel()
        if self._running_tasks:
            await asyncio.gather(*self._running_tasks, return_exceptions=True)
        self._cancel_waiting()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._loop = None
        self._store.drop_cancellations()
        self._flush(self._now())

    def close(self) -> None:
        """Release the store (a durable store's file and its lock); call it after `stop`."""
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

    def now(self) -> float:
        """The balancer's clock, in seconds: the one `deadline=` is read on."""
        return self._now()

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
        speed_hint: float | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        """Register an agent; `handler(task)` may be async or plain (plain runs in a thread).

        `speed_hint` (work units per second) is only where the learned speed starts; leave it out
        when unknown. The thread pool grows to the total capacity of the plain agents (or
        `max_threads`).
        """
        if not callable(handler):
            raise AgentError(f"handler: {handler!r} is not callable")
        tag_set = _tags(tags)
        spec = AgentSpec(
            id=agent_id,
            capacity=capacity,
            weight=weight,
            speed_hint=speed_hint,
            region=region,
            cost=cost,
            tags=tag_set,
        )
        existing = self._agent(agent_id)
        if existing is not None:
            state = "still draining" if existing.draining else "already registered"
            raise AgentError(f"agent_id: {agent_id!r} is {state}")
        is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            type(handler).__call__
        )
        self._coord.add_agent(spec, self._now())
        self._handlers[agent_id] = (handler, is_async)
        if not is_async:
            self._plain_capacity += capacity
        self._pump()

    def remove_agent(self, agent_id: str) -> None:
        """Stop routing to an agent: its queue moves to the others, its running tasks finish."""
        existing = self._agent(agent_id)
        if existing is None:
            raise AgentError(f"agent_id: {agent_id!r} is not registered")
        if existing.draining:
            raise AgentError(f"agent_id: {agent_id!r} is already being removed")
        self._coord.remove_agent(agent_id, self._now())
        self._pump()

    def _agent(self, agent_id: object) -> Any:
        if not isinstance(agent_id, str):
            raise AgentError(f"agent_id: {agent_id!r} is not a string")
        try:
            return self._coord.store.agent(agent_id)
        except KeyError:
            return None

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
        """Accept a task and return its handle (the first handle again for a repeated key).

        `deadline` is absolute on `now()` and must not be past; `within` is relative.
        """
        self._check_running()
        now = self._now()
        task = self._make(
            payload,
            now,
            priority,
            tenant,
            deadline,
            within,
            estimate,
            affinity,
            region,
            idempotency_key,
            task_id,
            max_retries,
            period,
        )
        if idempotency_key is not None or task_id is not None:
            known = self._fresh(task)
            if known is not None:
                if self._durable:  # its first submit may still wait for the flush
                    await self._next_flush()
                return known
        if self._bounded:
            await self._wait_for_space()
            task.submitted_at = self._now()
        handle = self._accept(task)
        if self._durable:  # durable on return: waiting for the flush lets the loop run too
            await self._next_flush()
        else:
            self._pump_soon()
            self._streak += 1
            if self._streak >= _SUBMIT_STREAK:
                # a loop of submits that never waits would start no task until it ends: let
                # the workers run now and then, as a burst is being submitted
                self._streak = 0
                await asyncio.sleep(0)
        return handle

    async def submit_many(self, payloads: Iterable[Any], **keywords: Any) -> list[TaskHandle]:
        """Submit a batch: `keywords` (submit's) apply to every item; an item may be a `Job`
        whose own fields override them. Every item is validated before any is accepted.

        Returns the handles in the items' order. With `maxQueueSize` and `queueFull: raise`, a
        batch that does not fit raises QueueFull before accepting anything; with `wait`, it
        waits for room item by item. With a durable store, the whole batch is written in one
        flush before this returns.
        """
        self._check_running()
        check_keywords(keywords)
        now = self._now()
        tasks = [self._make_item(item, keywords, now) for item in payloads]
        self._check_batch(tasks)
        self._check_fresh(tasks)
        handles: list[TaskHandle] = []
        accepted: list[TaskHandle] = []
        try:
            for task in tasks:
                known = self._known(task)
                if known is not None:
                    handles.append(known)
                    continue
                if self._bounded:
                    await self._wait_for_space()
                    task.submitted_at = self._now()
                handle = self._accept(task)
                handles.append(handle)
                accepted.append(handle)
        except BaseException:
            for handle in accepted:  # admission control refused one: take the batch back
                handle.cancel()
            raise
        if self._durable:  # one flush writes the batch
            await self._next_flush()
        else:
            self._pump_soon()
        return handles

    async def map(self, payloads: Iterable[Any], **keywords: Any) -> AsyncIterator[Any]:
        """Submit every item and yield the results in submission order, as `Executor.map` does.

        A task that failed raises TaskFailed at its position. Items are validated before any is
        submitted; with `maxQueueSize` they are submitted lazily, at most that many ahead of
        the consumer, so memory stays bounded. Closing the iterator early cancels the rest.
        """
        self._check_running()
        check_keywords(keywords)
        limit = self.config.max_queue_size
        pending: deque[TaskHandle] = deque()
        try:
            if limit is None:
                pending.extend(await self.submit_many(payloads, **keywords))
                while pending:
                    yield await pending[0]
                    pending.popleft()
                return
            items = list(payloads)
            now = self._now()
            tasks = [self._make_item(item, keywords, now) for item in items]
            self._check_batch(tasks)
            self._check_fresh(tasks)
            for task in tasks:
                known = self._known(task)
                if known is None:
                    await self._wait_for_space()
                    task.submitted_at = self._now()
                    known = self._accept(task)
                    self._pump_soon()
                pending.append(known)
                if len(pending) >= limit:
                    yield await pending[0]
                    pending.popleft()
            while pending:
                yield await pending[0]
                pending.popleft()
        finally:
            for handle in pending:
                handle.cancel()

    def result(self, task_id: str) -> TaskRecord | None:
        """What the store recorded about a task, by id: with a durable store, finished tasks'
        results stay readable for `resultRetention` (also after a restart); None if unknown."""
        return self._store.result(task_id)

    async def join(self) -> None:
        """Wait until every accepted task has completed, failed or been cancelled."""
        while self._outstanding:
            await self._drained.wait()

    def report(self) -> dict[str, Any]:
        """The metrics report: a strict-JSON dict (docs/metrics.md)."""
        return self._coord.report()

    @property
    def coordinator(self) -> Coordinator:
        return self._coord

    @property
    def outstanding(self) -> int:
        return self._outstanding

    # -- submission internals -----------------------------------------------------------------
    def _check_running(self) -> None:
        if self._loop is None:
            raise RuntimeError("the balancer is not running: use `async with balancer:` first")

    def _make(
        self,
        payload: Any,
        now: float,
        priority: Priority | str | None = None,
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
    ) -> Task:
        """A validated task (not yet accepted); every bad field raises TaskRejected naming it."""
        task = Task.create(
            payload,
            now=now,
            priority="normal" if priority is None else priority,
            tenant=tenant,
            deadline=deadline,
            within=within,
            estimate=estimate,
            affinity=affinity,
            region=region,
            idempotency_key=idempotency_key,
            task_id=f"{self._prefix}-{next(self._ids)}" if task_id is None else task_id,
            max_retries=self.config.max_retries if max_retries is None else max_retries,
            period=period,
        )
        if deadline is not None and deadline < now:
            raise TaskRejected(
                f"deadline: {deadline!r} is already past (now() is {now:.6f}); "
                "deadlines are absolute on Balancer.now(), use `within` for a relative one"
            )
        return task

    def _make_item(self, item: Any, keywords: dict[str, Any], now: float) -> Task:
        payload, fields = merged(item, keywords)
        return self._make(payload, now, **fields)

    def _check_batch(self, tasks: list[Task]) -> None:
        """Refuse a batch with a task id twice, or one that cannot fit a `raise` queue."""
        ids = {t.id for t in tasks}
        if len(ids) != len(tasks):
            seen: set[str] = set()
            for t in tasks:
                if t.id in seen:
                    raise TaskRejected(f"task_id: {t.id!r} appears twice in the batch")
                seen.add(t.id)
        limit = self.config.max_queue_size
        if limit is not None and self.config.queue_full == "raise":
            self._pump()
            room = limit - self._coord.queued_total()
            if len(tasks) > room:
                raise QueueFull(f"maxQueueSize: {limit} tasks, room for {max(room, 0)} more")

    def _known(self, task: Task) -> TaskHandle | None:
        """The handle of an earlier task with the same idempotency key, if any."""
        key = task.idempotency_key
        if key is None:
            return None
        return self._keyed.get(key)

    def _check_fresh(self, tasks: list[Task]) -> None:
        """Refuse a batch naming a task id already in use (generated ids never are)."""
        ours = f"{self._prefix}-"
        for task in tasks:
            if task.idempotency_key is not None or not task.id.startswith(ours):
                self._fresh(task)

    def _fresh(self, task: Task) -> TaskHandle | None:
        """The earlier handle for a repeated idempotency key; else None, after checking that a
        task id the user chose is not in use."""
        known = self._known(task)
        if known is None and self._coord.store.get(task.id) is not None:
            raise TaskRejected(f"task_id: {task.id!r} is already in use")
        return known

    def _accept(self, task: Task) -> TaskHandle:
        """Hand a validated task to the coordinator and return its new handle."""
        loop = self._loop
        assert loop is not None
        accepted = self._coord.submit(task, task.submitted_at)
        if accepted is not task:  # the store still knew the key: the first task's handle
            return self._handles.get(accepted.id) or self._finished_handle(accepted)
        if not self._outstanding:
            self._drained.clear()
        self._outstanding += 1
        return self._handle_for(task, loop)

    def _handle_for(self, task: Task, loop: asyncio.AbstractEventLoop) -> TaskHandle:
        """A new handle for an accepted task, findable by id and idempotency key."""
        handle = TaskHandle(task, self, loop)
        self._handles[task.id] = handle
        key = task.idempotency_key
        if key is not None:
            keyed = self._keyed
            keyed[key] = handle
            if len(keyed) > self._key_limit:
                keyed.popitem(last=False)
        return handle

    def _finished_handle(self, task: Task) -> TaskHandle:
        """A handle for a task accepted earlier whose own handle is no longer kept (a completed
        one gives the result a durable store recorded, else None)."""
        loop = self._loop
        assert loop is not None
        handle = self._handles.get(task.id)
        if handle is not None:
            return handle
        handle = TaskHandle(task, None, loop)
        if task.state is TaskState.CANCELLED:
            handle._cancel_now()
        elif task.state is TaskState.FAILED:
            handle.set_exception(TaskFailed(task.id, task.attempt, task.error or "failed"))
            handle._log_traceback = False
        else:
            record = self._store.result(task.id)
            handle.set_result(None if record is None else record.result)
        return handle

    # -- durability ---------------------------------------------------------------------------
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

    # -- cancellation -------------------------------------------------------------------------
    def _cancel_handle(self, handle: TaskHandle, msg: Any) -> bool:
        """`TaskHandle.cancel`: remove a waiting task now, interrupt a running one."""
        task = handle.task
        if task.state is TaskState.RUNNING:
            if not handle._cancelling:
                handle._cancelling = True
                worker = handle._worker
                if worker is not None:
                    worker.cancel(msg)
                # else: claimed but not started; its attempt sees the flag and does not start
            return True
        if self._coord.cancel(task.id, self._now()) is None:
            handle._cancel_now(msg)  # not ours any more (the balancer has stopped)
            return True
        self._settled(handle, task)
        handle._cancel_now(msg)
        if self._bounded:
            self._space.set()
        return True

    def _cancel_waiting(self) -> None:
        """On stop without draining: cancel every task still known, wherever it is."""
        now = self._now()
        for handle in list(self._handles.values()):
            task = handle.task
            if task.state is TaskState.RUNNING:  # its worker was cancelled before it started
                self._coord.finish(task, now, ok=False, cancelled=True)
            else:
                self._coord.cancel(task.id, now)
            self._settled(handle, task)
            handle._cancel_now()

    def _abandoned(self, task: Task) -> None:
        """A task the coordinator failed without running it (parked past `parkTimeout`)."""
        handle = self._handles.get(task.id)
        if handle is None:
            return
        self._settled(handle, task)
        if not handle.done():
            handle.set_exception(TaskFailed(task.id, task.attempt, task.error or "failed"))
            handle._log_traceback = False  # failures are counted in the report

    def _settled(self, handle: TaskHandle, task: Task) -> None:
        self._handles.pop(task.id, None)
        self._outstanding -= 1
        if not self._outstanding:
            self._drained.set()

    # -- running ------------------------------------------------------------------------------
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
        assignments = coord.dispatch(self._now() if now is None else now)
        for task in coord.take_abandoned():
            self._abandoned(task)
        for a in assignments:
            self._running_tasks.add(loop.create_task(self._work(a.task, a.agent.id)))
        if assignments:
            self._space.set()
        self._arm_timer()
        self._flush(self._now() if now is None else now)

    async def _work(self, task: Task | None, agent_id: str) -> None:
        """Run `task` on the agent, then whatever the agent should run next in the same slot.

        One asyncio Task serves a slot for as long as its agent has work, so a busy swarm costs
        one handler call per task rather than a new Task; it yields to the loop every few tasks.
        """
        me = asyncio.current_task()
        assert me is not None
        try:
            ran = 0
            now = self._now()
            while task is not None:
                now = await self._attempt(task, agent_id, now, me)
                ran += 1
                if ran % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                    now = self._now()
                if self._loop is None or self._stopping:
                    return
                task = self._coord.next_for(agent_id, now)
                if task is not None and self._bounded:
                    self._space.set()  # a queued task left its queue: a waiting submit may go
        finally:
            self._running_tasks.discard(me)

    async def _attempt(
        self, task: Task, agent_id: str, started: float, me: asyncio.Task[None]
    ) -> float:
        """Run one attempt, begun at `started`, and report it to the coordinator; returns the
        time it ended.

        Whatever the handler raises, BaseException included, ends the attempt here, so its
        slot is freed and its handle resolved; KeyboardInterrupt and SystemExit then propagate.
        """
        handle = self._handles[task.id]
        if handle._cancelling:  # cancelled after its claim, before it began
            return self._end_cancelled(handle, task, started)
        handler, is_async = self._handlers[agent_id]
        timeout = self.config.task_timeout
        limit: asyncio.Timeout | None = None
        handle._worker = me
        try:
            if not is_async:
                result = await self._in_thread(handler, task, handle, me)
            elif timeout:
                limit = asyncio.timeout(timeout)
                async with limit:
                    result = await handler(task)
            else:
                result = await handler(task)
        except asyncio.CancelledError:
            handle._worker = None
            if _cancel_requested(handle) and not self._stopping:
                me.uncancel()  # the user cancelled this task, not the worker: carry on
                return self._end_cancelled(handle, task, started)
            self._end_cancelled(handle, task, started)
            raise
        except TimeoutError as exc:
            handle._worker = None
            if self._forget_cancel(handle, me):
                return self._end_cancelled(handle, task, started)
            ours = limit is not None and limit.expired()
            text = f"timeout after {timeout}s" if ours else f"TimeoutError: {exc}"
            return self._end_failed(handle, task, started, Failure(exc, text, True, None))
        except BaseException as exc:
            handle._worker = None
            if self._forget_cancel(handle, me):
                self._end_cancelled(handle, task, started)
            else:
                self._end_failed(handle, task, started, classify(exc, self._non_retryable))
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                me.add_done_callback(_retrieve)  # the loop re-raises it; the Task need not log it
                raise  # the program is being stopped: after the bookkeeping, let it stop
            return self._now()
        handle._worker = None
        if _cancel_requested(handle):
            if me.cancelling():
                me.uncancel()
            if not is_async:  # a thread cannot be interrupted: its result is discarded
                return self._end_cancelled(handle, task, started)
        now = self._now()
        duration = now - started
        if timeout and not is_async and duration > timeout:
            self._coord.recorder.late_results += 1
        outcome = self._coord.finish(task, now, ok=True, duration=duration, result=result)
        if outcome is Outcome.DONE:
            self._settled(handle, task)
            if not handle.done():
                handle.set_result(result)
        self._pump_soon()
        return now

    def _forget_cancel(self, handle: TaskHandle, me: asyncio.Task[None]) -> bool:
        """Was the task cancelled by the user while its handler ended with another error? Then
        the attempt ends as cancelled, and the worker, which goes on serving its slot, takes the
        request back."""
        if not _cancel_requested(handle) or self._stopping:
            return False
        if me.cancelling():
            me.uncancel()
        return True

    async def _in_thread(
        self, handler: Handler, task: Task, handle: TaskHandle, me: asyncio.Task[None]
    ) -> Any:
        """Run a plain handler in the pool and wait for its thread to return, even when the
        task is cancelled meanwhile (its slot stays busy until then); only stopping the
        balancer stops the wait."""
        future = self._threads().submit(handler, task)
        waiter = asyncio.wrap_future(future)
        while True:
            try:
                return await waiter
            except asyncio.CancelledError:
                if self._stopping or not handle._cancelling or future.cancelled():
                    raise
                me.uncancel()
                waiter = asyncio.wrap_future(future)

    def _end_cancelled(self, handle: TaskHandle, task: Task, started: float) -> float:
        now = self._now()
        self._coord.finish(task, now, ok=False, duration=now - started, cancelled=True)
        self._settled(handle, task)
        handle._cancel_now()
        self._pump_soon()
        return now

    def _end_failed(
        self, handle: TaskHandle, task: Task, started: float, failure: Failure
    ) -> float:
        now = self._now()
        errors = handle._errors
        if errors is None:
            errors = handle._errors = []
        errors.append(failure.error)
        if len(errors) > _KEEP_ERRORS:
            del errors[0]
        outcome = self._coord.finish(
            task,
            now,
            ok=False,
            error=failure.text,
            duration=now - started,
            retryable=failure.retryable,
            retry_after=failure.retry_after,
        )
        if outcome is Outcome.FAILED:
            self._settled(handle, task)
            if not handle.done():
                handle.set_exception(TaskFailed(task.id, task.attempt, failure.text, tuple(errors)))
                handle._log_traceback = False  # failures are counted in the report
        self._pump_soon()
        return now

    def _threads(self) -> ThreadPoolExecutor:
        """The pool for plain handlers, as large as their total capacity (or `max_threads`)."""
        wanted = self._max_threads or max(self._plain_capacity, 1)
        pool = self._executor
        if pool is None or self._pool_size < wanted:
            if pool is not None:
                pool.shutdown(wait=False)  # its threads finish what they run, then exit
            pool = self._executor = ThreadPoolExecutor(wanted, thread_name_prefix="swarmbalancer")
            self._pool_size = wanted
        return pool

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
        self._coord.tick(now)
        self._pump(now)


def _tags(tags: object) -> frozenset[str]:
    """An agent's tags as a set of strings; anything else is an AgentError naming `tags`."""
    problem = f"tags: {tags!r} must be a list of strings"
    if isinstance(tags, str | bytes):
        raise AgentError(problem + ", not one string")
    try:
        found: frozenset[object] = frozenset(tags)  # type: ignore[call-overload]
    except TypeError:
        raise AgentError(problem) from None
    strings = frozenset(tag for tag in found if isinstance(tag, str))
    if len(strings) != len(found):
        raise AgentError(problem)
    return strings


def _cancel_requested(handle: TaskHandle) -> bool:
    """Has the user cancelled this handle's task? (Read again after each await.)"""
    return handle._cancelling


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
