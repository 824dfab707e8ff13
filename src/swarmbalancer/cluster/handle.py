"""What `Client.submit` returns: an asyncio future of a task that runs in a swarm across
machines, resolved when the task's outcome is recorded."""

from __future__ import annotations

import asyncio
from typing import Any

from swarmbalancer.errors import TaskFailed


class RemoteHandle(asyncio.Future[Any]):
    """A task of a distributed swarm as an asyncio future: `await handle` gives the handler's
    return value, raises TaskFailed when the task failed after its retries, CancelledError when
    it was cancelled. Works with `asyncio.gather`, `wait`, `as_completed` and `wait_for`.

    `cancel()` only stops this client waiting: the task itself goes on in the swarm.
    `created` is False when the submit found an existing task (same idempotency key).
    """

    __slots__ = ("_waiting", "created", "id")

    def __init__(
        self, task_id: str, loop: asyncio.AbstractEventLoop, waiting: dict[str, RemoteHandle]
    ) -> None:
        super().__init__(loop=loop)
        self.id = task_id
        self.created = True
        self._waiting = waiting  # the client's map of unresolved handles, which this leaves

    def cancel(self, msg: Any | None = None) -> bool:
        """Stop waiting for the task (it is not cancelled in the swarm)."""
        if self._waiting.get(self.id) is self:
            del self._waiting[self.id]
        return super().cancel(msg)

    def settle(self, state: str, result: Any, error: str | None, attempt: int) -> None:
        """Resolve from a recorded outcome: done, failed or cancelled."""
        if self.done():
            return
        if state == "done":
            self.set_result(result)
        elif state == "failed":
            self.set_exception(TaskFailed(self.id, attempt, error or "failed"))
            self._log_traceback = False  # failures are the caller's to read, not to log
        else:
            super().cancel(f"task {self.id} was cancelled")

    def __repr__(self) -> str:
        state = "pending" if not self.done() else "done"
        return f"RemoteHandle(id={self.id!r}, {state})"
