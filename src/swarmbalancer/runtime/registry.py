"""The handles of accepted tasks: findable by id and idempotency key, settled exactly once, and
cancelled (a waiting task at once, a running one through its worker)."""

from __future__ import annotations

import asyncio
from typing import Any

from mypy_extensions import mypyc_attr

from swarmbalancer.errors import TaskFailed
from swarmbalancer.model import Task, TaskState
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.runtime.state import BalancerState


def new_handle(
    task: Task, owner: HandleRegistry | None, loop: asyncio.AbstractEventLoop
) -> TaskHandle:
    """A pending handle of `task` on `loop`; `owner` carries out its `cancel()` (None: a plain
    future's cancel). Made here, in compiled code, without a Python `__init__`: one per task."""
    handle = TaskHandle(loop=loop)
    handle.task = task
    handle._owner = owner
    handle._worker = None
    handle._cancelling = False
    handle._errors = None
    return handle


@mypyc_attr(allow_interpreted_subclasses=True)  # Balancer's subclasses
class HandleRegistry(BalancerState):
    """Making, settling and cancelling task handles: the balancer's bookkeeping of its tasks."""

    def _handle_for(self, task: Task, loop: asyncio.AbstractEventLoop) -> TaskHandle:
        """A new handle for an accepted task, findable by id and idempotency key."""
        handle = new_handle(task, self, loop)
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
        handle = new_handle(task, None, loop)
        if task.state is TaskState.CANCELLED:
            handle._cancel_now()
        elif task.state is TaskState.FAILED:
            handle.set_exception(TaskFailed(task.id, task.attempt, task.error or "failed"))
            handle._log_traceback = False
        else:
            record = self._store.result(task.id)
            handle.set_result(None if record is None else record.result)
        return handle

    def _settled(self, handle: TaskHandle, task: Task) -> None:
        self._handles.pop(task.id, None)
        self._outstanding -= 1
        if not self._outstanding:
            self._drained.set()

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
