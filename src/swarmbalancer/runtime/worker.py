"""Running attempts: one asyncio Task serves a slot, runs its task's handler (async, or plain in
the thread pool), reports the attempt's end to the coordinator and takes the slot's next task."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mypy_extensions import mypyc_attr

from swarmbalancer.coordinator import Outcome
from swarmbalancer.errors import TaskFailed
from swarmbalancer.metrics.usage import Usage
from swarmbalancer.model import Task
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.runtime.measured import REPORTED, elapsed
from swarmbalancer.runtime.outcomes import Failure, classify
from swarmbalancer.runtime.state import Handler
from swarmbalancer.runtime.submission import Submission
from swarmbalancer.usage import Meter, running_meter

#: A worker Task lets the loop run others after this many tasks in a row that never waited.
_YIELD_EVERY = 16
#: The most attempt errors a TaskFailed keeps (the newest).
_KEEP_ERRORS = 16
_METER = running_meter()
#: Meters kept for reuse, by (agent, tenant); the cache starts over when it reaches this size.
_MAX_METERS = 4096


@mypyc_attr(allow_interpreted_subclasses=True)  # Balancer's subclasses
class Worker(Submission):
    """The worker Tasks: attempts, their timeouts and cancellation, and the thread pool."""

    async def _work(self, task: Task | None, agent_id: str) -> None:
        """Run `task` on the agent, then whatever the agent should run next in the same slot.

        One asyncio Task serves a slot for as long as its agent has work, so a busy swarm costs
        one handler call per task rather than a new Task; it yields to the loop every few tasks.
        An async handler without a time limit (the common case) is awaited right here, without
        an attempt coroutine of its own.
        """
        me = asyncio.current_task()
        assert me is not None
        handles, handlers, coord = self._handles, self._handlers, self._coord
        meter: Meter | None = None
        tenant: str | None = None
        try:
            ran = 0
            now = self._now()
            while task is not None:
                handle = handles[task.id]
                handler, is_async = handlers[agent_id]
                ended: Task | None = None  # set when the attempt completed and took the next
                if not is_async or self.config.task_timeout or handle._cancelling:
                    now = await self._attempt(task, agent_id, now, me)
                else:
                    if meter is None or task.tenant != tenant:
                        tenant = task.tenant
                        meter = self._meter(agent_id, tenant)
                    if _METER.get() is not meter:
                        _METER.set(meter)
                    handle._worker = me
                    started = now
                    try:
                        result = await handler(task)
                    except BaseException as exc:
                        now = self._raised(exc, handle, task, started, me, None)
                    else:
                        handle._worker = None
                        # the cancel flag is read again: the await may have set it
                        if _cancel_requested(handle) or self._loop is None or self._stopping:
                            now = self._returned(result, handle, task, started, me, True)
                        else:  # `_returned`'s common case, inline, with the slot's next claim
                            now = self._now()
                            reported = REPORTED.get()  # `elapsed`, without its call
                            duration = now - started if reported is None else elapsed(now, started)
                            ended = task
                            task = coord.succeeded_next(ended, now, duration, result)
                            self._settled(handle, ended)
                            if not handle.done():
                                handle.set_result(result)
                            if not self._pump_pending:
                                self._pump_soon()
                if ended is None:
                    if self._loop is None or self._stopping:
                        return
                    task = coord.next_for(agent_id, now)
                if task is None:
                    return
                if self._bounded:
                    self._space.set()  # a queued task left its queue: a waiting submit may go
                ran += 1
                if ran % _YIELD_EVERY == 0:
                    # the slot yields holding its next task, so a dispatch meanwhile does not
                    # start another worker in it (stop cancels this one: see _cancel_waiting)
                    await asyncio.sleep(0)
                    now = self._now()
        finally:
            self._running_tasks.discard(me)

    async def _attempt(
        self, task: Task, agent_id: str, started: float, me: asyncio.Task[None]
    ) -> float:
        """Run one attempt, begun at `started`, and report it to the coordinator; returns the
        time it ended."""
        handle = self._handles[task.id]
        if handle._cancelling:  # cancelled after its claim, before it began
            return self._end_cancelled(handle, task, started)
        handler, is_async = self._handlers[agent_id]
        timeout = self.config.task_timeout
        limit: asyncio.Timeout | None = None
        handle._worker = me
        meter = self._meter(agent_id, task.tenant)
        if _METER.get() is not meter:
            _METER.set(meter)
        try:
            if not is_async:
                result = await self._in_thread(handler, task, handle, me)
            elif timeout:
                limit = asyncio.timeout(timeout)
                async with limit:
                    result = await handler(task)
            else:
                result = await handler(task)
        except BaseException as exc:
            return self._raised(exc, handle, task, started, me, limit)
        return self._returned(result, handle, task, started, me, is_async)

    def _raised(
        self,
        exc: BaseException,
        handle: TaskHandle,
        task: Task,
        started: float,
        me: asyncio.Task[None],
        limit: asyncio.Timeout | None,
    ) -> float:
        """An attempt's handler raised `exc`: end the attempt as cancelled or failed; returns
        the time it ended.

        Whatever the handler raises, BaseException included, ends the attempt here, so its
        slot is freed and its handle resolved; CancelledError of the worker itself,
        KeyboardInterrupt and SystemExit then propagate.
        """
        handle._worker = None
        if isinstance(exc, asyncio.CancelledError):
            if _cancel_requested(handle) and not self._stopping:
                me.uncancel()  # the user cancelled this task, not the worker: carry on
                return self._end_cancelled(handle, task, started)
            self._end_cancelled(handle, task, started)
            raise exc
        if isinstance(exc, TimeoutError):
            if self._forget_cancel(handle, me):
                return self._end_cancelled(handle, task, started)
            ours = limit is not None and limit.expired()
            timeout = self.config.task_timeout
            text = f"timeout after {timeout}s" if ours else f"TimeoutError: {exc}"
            return self._end_failed(handle, task, started, Failure(exc, text, True, None))
        if self._forget_cancel(handle, me):
            self._end_cancelled(handle, task, started)
        else:
            self._end_failed(handle, task, started, classify(exc, self._non_retryable))
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            me.add_done_callback(_retrieve)  # the loop re-raises it; the Task need not log it
            raise exc  # the program is being stopped: after the bookkeeping, let it stop
        return self._now()

    def _returned(
        self,
        result: Any,
        handle: TaskHandle,
        task: Task,
        started: float,
        me: asyncio.Task[None],
        is_async: bool,
    ) -> float:
        """An attempt's handler returned `result`: complete the task (or end it as cancelled
        when the user cancelled it meanwhile); returns the time it ended."""
        handle._worker = None
        if _cancel_requested(handle):
            if me.cancelling():
                me.uncancel()
            if not is_async:  # a thread cannot be interrupted: its result is discarded
                return self._end_cancelled(handle, task, started)
        now = self._now()
        duration = elapsed(now, started)
        timeout = self.config.task_timeout
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
        context = contextvars.copy_context()  # report_usage in the thread finds its attempt
        future = self._threads().submit(context.run, handler, task)
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
        self._coord.finish(task, now, ok=False, duration=elapsed(now, started), cancelled=True)
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
            duration=elapsed(now, started),
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

    def _meter(self, agent_id: str, tenant: str | None) -> Meter:
        """The meter for attempts on `agent_id` for `tenant` (immutable, so shared by them all:
        a worker sets it only when it changes)."""
        key = (agent_id, tenant)
        meter = self._meters.get(key)
        if meter is None:
            if len(self._meters) >= _MAX_METERS:
                self._meters.clear()
            loop = asyncio.get_running_loop()
            meter = Meter(self._usage_sink, agent_id, tenant, loop, threading.get_ident())
            self._meters[key] = meter
        return meter

    def _usage_sink(self, agent_id: str, tenant: str | None, usage: Usage) -> None:
        self._coord.recorder.usage_reported(agent_id, tenant, usage)

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


def _cancel_requested(handle: TaskHandle) -> bool:
    """Has the user cancelled this handle's task? (Read again after each await.)"""
    return handle._cancelling


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
