"""Running attempts: an async handler on the worker's event loop, a plain one in a pool of
`capacity` threads, each under its entry's timeout.

Async attempts run in slot Tasks (at most `capacity`, made as needed): a slot runs attempts one
after another while any wait, so a busy worker costs a handler call per attempt, not a new Task,
and the handler still runs inside a Task of its own (`asyncio.timeout`, `current_task()` and
`report_usage` behave as in the embedded runtime).

Each attempt ends in exactly one outcome, handed to `report`; its slot is freed (`freed`) when
its handler is done. A plain handler's thread cannot be interrupted: at its timeout the timeout
is reported and the slot stays busy until the thread returns, whose result is then discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from swarmbalancer.runtime.outcomes import Failure, classify
from swarmbalancer.usage import Meter, running_meter
from swarmbalancer.worker.attempt import Attempt, failed, succeeded

log = logging.getLogger("swarmbalancer.worker")

_METER = running_meter()
#: A slot lets the loop run others after this many attempts in a row.
_YIELD_EVERY = 16
_NOTHING: frozenset[str] = frozenset()
_clock = time.perf_counter


def is_async_handler(handler: Callable[..., Any]) -> bool:
    """Is `handler` a coroutine function (or an object whose `__call__` is one)?"""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        type(handler).__call__
    )


def _timed_out(timeout: float) -> Failure:
    error = TimeoutError(f"no result after {timeout}s (the task's timeout)")
    return Failure(error, f"TimeoutError: {error}", True, None)


class Runner:
    """Starts attempts and turns each one's end into an outcome."""

    def __init__(
        self,
        handler: Callable[..., Any],
        *,
        agent_id: str,
        capacity: int,
        max_result_bytes: int,
        report: Callable[[str], None],
        freed: Callable[[], None],
    ) -> None:
        self.handler = handler
        self.agent_id = agent_id
        self.is_async = is_async_handler(handler)
        self.max_result_bytes = max_result_bytes
        self.busy = 0  # attempts whose handler has not returned yet
        self._report = report
        self._freed = freed
        self._loop = asyncio.get_running_loop()
        self._capacity = capacity
        self._slots: set[asyncio.Task[None]] = set()
        self._todo: deque[Attempt] = deque()  # async attempts no slot has begun yet
        self._parked: list[asyncio.Future[None]] = []  # idle slots' wake-up calls
        self._pool = (
            None
            if self.is_async
            else ThreadPoolExecutor(capacity, thread_name_prefix="swarmbalancer-worker")
        )
        # plain handlers' ends, handed from their threads to the loop in batches
        self._landed: deque[tuple[Attempt, Any, Failure | None, float]] = deque()
        self._wakeup_pending = False

    def start(self, attempt: Attempt) -> None:
        """Begin running an attempt (its slot is taken from now on)."""
        self.busy += 1
        if self._pool is None:
            self._todo.append(attempt)
            if self._parked:
                wake = self._parked.pop()
                if not wake.done():
                    wake.set_result(None)
            elif len(self._slots) < self._capacity:
                slot = self._loop.create_task(self._slot())
                self._slots.add(slot)
                slot.add_done_callback(self._slots.discard)
            return
        self._pool.submit(self._run_plain, attempt)
        if attempt.timeout is not None:
            attempt.timer = self._loop.call_later(attempt.timeout, self._expire, attempt)

    def close(self) -> None:
        """Stop the idle slots and release the thread pool (its threads finish what they run)."""
        for slot in self._slots:
            slot.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _slot(self) -> None:
        """Run waiting async attempts one after another; park while there are none."""
        todo = self._todo
        ran = 0
        while True:
            if not todo:
                wake = self._loop.create_future()
                self._parked.append(wake)
                await wake
                continue
            await self._run_async(todo.popleft())
            ran += 1
            if ran % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # attempts that never wait must not starve the loop

    async def _run_async(self, attempt: Attempt) -> None:
        _METER.set(
            Meter(attempt.usage_sink, self.agent_id, None, self._loop, threading.get_ident())
        )
        started = _clock()
        timeout = attempt.timeout
        limit: asyncio.Timeout | None = None
        try:
            if timeout is None:
                result = await self.handler(attempt.task)
            else:
                limit = asyncio.timeout(timeout)
                async with limit:
                    result = await self.handler(attempt.task)
        except TimeoutError as exc:
            ours = limit is not None and limit.expired()
            failure = _timed_out(timeout) if ours and timeout else classify(exc, _NOTHING)
            self._end(attempt, None, failure, _clock() - started)
        except asyncio.CancelledError as exc:
            me = asyncio.current_task()
            if me is not None and me.cancelling():  # torn down: no outcome, the lease expires
                self.busy -= 1
                raise
            self._end(attempt, None, classify(exc, _NOTHING), _clock() - started)
        except BaseException as exc:  # the handler's failure is the attempt's outcome
            self._end(attempt, None, classify(exc, _NOTHING), _clock() - started)
        else:
            self._end(attempt, result, None, _clock() - started)

    def _end(self, attempt: Attempt, result: Any, failure: Failure | None, runtime: float) -> None:
        self.busy -= 1
        if not attempt.reported:
            attempt.reported = True
            if failure is None:
                outcome = succeeded(self.agent_id, attempt, result, runtime, self.max_result_bytes)
            else:
                outcome = failed(self.agent_id, attempt, failure, runtime)
            self._report(outcome)
        else:
            log.info("task %s returned after its timeout was reported: result discarded",
                     attempt.task.id)  # fmt: skip
        self._freed()

    # plain handlers: the thread side

    def _run_plain(self, attempt: Attempt) -> None:
        contextvars.copy_context().run(self._call_plain, attempt)

    def _call_plain(self, attempt: Attempt) -> None:
        _METER.set(
            Meter(attempt.usage_sink, self.agent_id, None, self._loop, threading.get_ident())
        )
        started = _clock()
        result: Any = None
        failure: Failure | None = None
        try:
            result = self.handler(attempt.task)
        except BaseException as exc:  # the handler's failure is the attempt's outcome
            failure = classify(exc, _NOTHING)
        self._landed.append((attempt, result, failure, _clock() - started))
        if not self._wakeup_pending:
            self._wakeup_pending = True
            # a RuntimeError: the loop closed under a thread that outlived the worker
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._collect)

    # plain handlers: the loop side

    def _collect(self) -> None:
        """Every plain attempt that ended since the last call (cleared before draining, so an
        end landing meanwhile schedules another call)."""
        self._wakeup_pending = False
        landed = self._landed
        while landed:
            attempt, result, failure, runtime = landed.popleft()
            if attempt.timer is not None:
                attempt.timer.cancel()
            self._end(attempt, result, failure, runtime)

    def _expire(self, attempt: Attempt) -> None:
        """A plain attempt's timeout passed: report it; the thread keeps its slot until done."""
        if attempt.reported or attempt.timeout is None:
            return
        attempt.reported = True
        self._report(failed(self.agent_id, attempt, _timed_out(attempt.timeout), attempt.timeout))
