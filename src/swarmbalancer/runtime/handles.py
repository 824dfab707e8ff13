"""Task handles: what `Balancer.submit` returns, awaitable for the task's result."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from swarmbalancer.errors import TaskFailed
from swarmbalancer.model import Task


def _silence(future: asyncio.Future[Any]) -> None:
    """Mark a failed task's exception as seen: failures are counted in the report."""
    if not future.cancelled():
        future.exception()


class TaskHandle:
    """An accepted task; `await handle` gives the handler's return value or raises TaskFailed.

    The future behind it is made only when someone awaits a task that has not finished yet, so a
    swarm of fire-and-forget tasks costs no future each.
    """

    __slots__ = ("_done", "_error", "_future", "_result", "task")

    def __init__(self, task: Task) -> None:
        self.task = task
        self._future: asyncio.Future[Any] | None = None
        self._done = False
        self._result: Any = None
        self._error: TaskFailed | None = None

    @property
    def id(self) -> str:
        return self.task.id

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        """The result of a finished task (raises TaskFailed, or InvalidStateError if not done)."""
        if not self._done:
            raise asyncio.InvalidStateError(f"task {self.task.id!r} has not finished")
        if self._error is not None:
            raise self._error
        return self._result

    def __await__(self) -> Generator[Any, None, Any]:
        if not self._done:
            future = self._future
            if future is None or future.cancelled():
                future = self._future = asyncio.get_running_loop().create_future()
            # shielded: one awaiter being cancelled must not cancel the result for the others
            yield from asyncio.shield(future).__await__()
        return self.result()

    def _resolve(self, result: Any, error: TaskFailed | None) -> None:
        """Called once by the balancer when the task completed or finally failed."""
        self._done, self._result, self._error = True, result, error
        future = self._future
        if future is None or future.done():
            return
        if error is None:
            future.set_result(result)
        else:
            future.add_done_callback(_silence)
            future.set_exception(error)

    def __repr__(self) -> str:
        return f"TaskHandle(id={self.task.id!r}, state={self.task.state.value!r})"
