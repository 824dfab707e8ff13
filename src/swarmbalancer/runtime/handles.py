"""Task handles: what `Balancer.submit` returns, an asyncio future of the task's result."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from swarmbalancer.model import Task


class _Canceller(Protocol):
    def _cancel_handle(self, handle: TaskHandle, msg: Any) -> bool: ...


class TaskHandle(asyncio.Future[Any]):
    """An accepted task as an asyncio future: `await handle` gives the handler's return value or
    raises TaskFailed (or CancelledError once cancelled).

    Being a real future, a handle works with `asyncio.gather`, `wait`, `as_completed`, `wait_for`
    and done callbacks at no extra cost. `cancel()` takes a waiting task out of its queue at once;
    a running one is cancelled as an asyncio Task is: the handler gets CancelledError (a plain
    handler's thread cannot be interrupted: the handle is cancelled once the thread returns).
    As for any awaited future, a coroutine cancelled while awaiting a handle cancels the task;
    await `asyncio.shield(handle)` to keep it running.
    """

    __slots__ = ("_cancelling", "_errors", "_owner", "_worker", "task")

    task: Task
    _owner: _Canceller | None
    _worker: asyncio.Task[Any] | None  # the worker running an attempt now
    _cancelling: bool
    _errors: list[BaseException] | None

    @property
    def id(self) -> str:
        return self.task.id

    def cancel(self, msg: Any | None = None) -> bool:
        """Cancel the task: a queued, parked or delayed one is removed (counted as cancelled in
        the report); a running one is interrupted. False when it has already finished."""
        if self.done():
            return False
        owner = self._owner
        if owner is None:
            return super().cancel(msg)
        return owner._cancel_handle(self, msg)

    def _cancel_now(self, msg: Any | None = None) -> None:
        """Resolve as cancelled (the balancer's side of `cancel`)."""
        if not self.done():
            super().cancel(msg)

    def __repr__(self) -> str:
        return f"TaskHandle(id={self.task.id!r}, state={self.task.state.value!r})"
