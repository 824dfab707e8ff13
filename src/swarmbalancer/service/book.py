"""The service's tasks by id: the live handles, and the newest finished ones (bounded), so a
client can read a result after the balancer has let go of the handle."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from swarmbalancer.errors import TaskFailed
from swarmbalancer.model import TaskState
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.store.record import TaskRecord


def task_view(handle: TaskHandle) -> dict[str, Any]:
    """A task's status as the API shows it: state, attempts, agent, and its outcome if ended."""
    task = handle.task
    view: dict[str, Any] = {
        "id": task.id,
        "state": task.state.value,
        "attempt": task.attempt,
        "agent": task.agent_id,
        "priority": task.priority.name.lower(),
        "tenant": task.tenant,
        "result": None,
        "error": None,
    }
    if handle.done():
        if handle.cancelled():
            view["state"] = TaskState.CANCELLED.value
        elif (exc := handle.exception()) is not None:
            view["state"] = TaskState.FAILED.value
            view["error"] = exc.cause if isinstance(exc, TaskFailed) else str(exc)
        else:
            view["state"] = TaskState.DONE.value
            view["result"] = handle.result()
    return view


def record_view(record: TaskRecord) -> dict[str, Any]:
    """A task only the store remembers (a durable store, after the handle was let go)."""
    return {
        "id": record.id,
        "state": record.state,
        "attempt": record.attempt,
        "agent": None,
        "priority": None,
        "tenant": None,
        "result": record.result,
        "error": record.error,
    }


class TaskBook:
    """Handles by task id: every unfinished one, plus the newest `keep_finished` finished."""

    def __init__(
        self,
        keep_finished: int,
        on_done: Callable[[TaskHandle], None],
        on_add: Callable[[TaskHandle], None] | None = None,
    ) -> None:
        self._keep = keep_finished
        self._live: dict[str, TaskHandle] = {}
        self._finished: OrderedDict[str, TaskHandle] = OrderedDict()
        self._on_done = on_done
        self._on_add = on_add

    def add(self, handle: TaskHandle) -> bool:
        """Track a handle; False when it is already tracked (a repeated key or task id)."""
        if handle.id in self._live or handle.id in self._finished:
            return False
        if self._on_add is not None:
            self._on_add(handle)
        if handle.done():
            self._finish(handle)
        else:
            self._live[handle.id] = handle
            handle.add_done_callback(self._finish)
        return True

    def get(self, task_id: str) -> TaskHandle | None:
        return self._live.get(task_id) or self._finished.get(task_id)

    def _finish(self, handle: asyncio.Future[Any]) -> None:
        assert isinstance(handle, TaskHandle)
        if not handle.cancelled():
            handle.exception()  # retrieved: a failure is the client's to read, not a log line
        self._live.pop(handle.id, None)
        self._finished[handle.id] = handle
        if len(self._finished) > self._keep:
            self._finished.popitem(last=False)
        self._on_done(handle)
