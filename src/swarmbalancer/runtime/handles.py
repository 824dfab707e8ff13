"""Task handles: what `Balancer.submit` returns, awaitable for the task's result."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from swarmbalancer.model import Task


class TaskHandle:
    """An accepted task; `await handle` gives the handler's return value or raises TaskFailed."""

    __slots__ = ("_future", "task")

    def __init__(self, task: Task, future: asyncio.Future[Any]) -> None:
        self.task = task
        self._future = future

    @property
    def id(self) -> str:
        return self.task.id

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> Any:
        """The result of a finished task (raises TaskFailed, or InvalidStateError if not done)."""
        return self._future.result()

    def __await__(self) -> Generator[Any, None, Any]:
        return asyncio.shield(self._future).__await__()

    def __repr__(self) -> str:
        return f"TaskHandle(id={self.task.id!r}, state={self.task.state.value!r})"
