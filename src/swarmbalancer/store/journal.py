"""The journal-behind part every durable store shares: the memory store's structures, with the
tasks whose recorded state changed kept dirty until the next `flush` writes them.

Scheduling stays in memory, exactly as in `MemoryStore`, so the policies and the hot path keep
their speed. Every transition recovery needs (a task accepted, an attempt started by `claim` or,
for a task taken from the shared queue, by `start`, a retry deferred, an outcome, a
cancellation by `remove`) marks the task dirty; `flush` hands the dirty tasks to the subclass,
which writes their current rows in one step (a SQLite transaction, a Redis script). Moves between
queues (`share`, `take_shared`, `enqueue`, `move`, `evacuate`, `park`, `due`) are not journaled:
the task is `waiting` wherever it waits, and recovery routes it again from scratch.

On open, the subclass reads the unfinished rows back (`_recovered`); `take_recovered` hands them
out once, their times moved onto the caller's clock. A row that was running keeps its attempt:
that attempt is presumed lost and counts against `max_retries`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mypy_extensions import mypyc_attr

from swarmbalancer.errors import TaskRejected
from swarmbalancer.metrics.timing import RollingTimer
from swarmbalancer.model import Task, TaskState
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store.codec import encode_payload
from swarmbalancer.store.memory import MemoryStore
from swarmbalancer.store.record import RecordState, TaskRecord

#: A task's state as a row records it; every other state (queued, parked, delayed) is waiting.
LABELS: dict[TaskState, RecordState] = {
    TaskState.RUNNING: "running",
    TaskState.DONE: "done",
    TaskState.FAILED: "failed",
    TaskState.CANCELLED: "cancelled",
}

#: A finished row's state back as a task state (a row found by its idempotency key).
STATES = {"done": TaskState.DONE, "failed": TaskState.FAILED, "cancelled": TaskState.CANCELLED}


def label(task: Task) -> RecordState:
    """The state a row records for `task`."""
    return LABELS.get(task.state, "waiting")


@mypyc_attr(allow_interpreted_subclasses=True)  # the SQLite and Redis stores
class JournalStore(MemoryStore):
    """`MemoryStore` plus the dirty-task journal; a subclass writes it and reads rows back.

    A subclass implements `_write` (the dirty tasks' rows, in one step), `_close_backend` (what
    `close` gives back), `_stored_key` (an idempotency key in the durable rows) and
    `_stored_record` (a task's row by id). Finished rows are kept for `retention` seconds, then
    purged `purge_batch` at a time: `_write` purges when `_purge_due` says so and reports back
    through `_purged`.
    """

    durable = True

    def __init__(
        self,
        queue_factory: Callable[[], LevelQueue],
        *,
        retention: float,
        max_payload_bytes: int,
        remember_keys: int,
        purge_batch: int,
    ) -> None:
        super().__init__(queue_factory, remember_keys=remember_keys)
        self._retention = retention
        self._max_payload = max_payload_bytes
        self._purge_batch = purge_batch
        self._next_purge = 0.0
        self._dirty: dict[str, Task] = {}
        self._new: set[str] = set()  # dirty tasks whose full row (payload included) is written
        self._payloads: dict[str, str] = {}  # JSON of new tasks' payloads, encoded at put
        self._results: dict[str, Any] = {}
        self._recovered: list[tuple[Task, bool]] = []  # (task, was running), set by the opener
        self._closed = False
        self._last_now = 0.0
        #: each flush that wrote something: its time and rows (bottleneck-analyze's store latency)
        self.flush_timing = RollingTimer()

    # -- what a subclass provides -------------------------------------------------------------
    def _write(self, wall: float, shift: float) -> None:
        """Write every dirty task's row in one step (a StoreError when it cannot: the tasks then
        stay dirty for the next flush). Times go in as Unix times: `shift` takes the balancer's
        clock there. Purge a batch of expired rows too when `_purge_due(wall)`."""
        raise NotImplementedError

    def _close_backend(self) -> None:
        """Give back what the store holds open (a file and its lock, a connection and a lease)."""
        raise NotImplementedError

    def _stored_key(self, key: str) -> tuple[str, str, int, str | None] | None:
        """(task id, state, attempt, error) of the oldest row recorded with this idempotency
        key, or None."""
        raise NotImplementedError

    def _stored_record(self, task_id: str) -> TaskRecord | None:
        """A task's record from its row, or None when there is none (unknown or purged)."""
        raise NotImplementedError

    # -- the journal --------------------------------------------------------------------------
    def flush(self, now: float) -> None:
        """Write every transition since the last flush in one step, then purge a batch of
        expired results when due. A no-op when nothing changed and nothing else is due."""
        wall = time.time()
        if not self._dirty and not self._flush_due(wall):
            return
        self._last_now = now
        started, rows = time.perf_counter(), len(self._dirty)
        self._write(wall, wall - now)
        if rows:
            self.flush_timing.since(started, rows)
        self._written()

    def _flush_due(self, wall: float) -> bool:
        """Is there something to write with no dirty task (here: a purge)?"""
        return self._purge_due(wall)

    def _purge_due(self, wall: float) -> bool:
        return wall >= self._next_purge

    def _purged(self, wall: float, count: int) -> None:
        """After a purge of `count` rows: come back at the next flush while a full batch went,
        else after a pause."""
        if count >= self._purge_batch:
            self._next_purge = wall
        else:
            self._next_purge = wall + max(1.0, min(60.0, self._retention / 10))

    def _written(self) -> None:
        """The dirty tasks are written: forget them."""
        self._dirty.clear()
        self._new.clear()
        self._payloads.clear()
        self._results.clear()

    def close(self) -> None:
        """Flush what is pending and release the store."""
        if self._closed:
            return
        if self._dirty:
            self.flush(self._last_now)
        self._close_backend()
        self._closed = True

    def drop_cancellations(self) -> None:
        """Forget the cancellations not flushed yet, so those tasks stay unfinished in the rows
        (waiting, or running: that attempt is then presumed lost) for the next store on them to
        recover: a balancer stopping without draining cancels its tasks in memory only."""
        dirty = self._dirty
        for task_id in [i for i, t in dirty.items() if t.state is TaskState.CANCELLED]:
            del dirty[task_id]
            self._new.discard(task_id)
            self._payloads.pop(task_id, None)

    # -- recovery -----------------------------------------------------------------------------
    def take_recovered(self, now: float) -> list[Task]:
        """The unfinished tasks found on open, in submission order, once; their times moved onto
        the caller's clock. A task whose lost attempt was its last is failed here instead."""
        recovered, self._recovered = self._recovered, []
        offset = now - time.time()  # rows hold Unix times
        out: list[Task] = []
        for task, was_running in recovered:
            task.submitted_at += offset
            if task.deadline is not None:
                task.deadline += offset
            if was_running and task.attempt > task.max_retries:
                task.state = TaskState.FAILED
                task.finished_at = now
                task.error = f"attempt {task.attempt} lost: the process stopped while it ran"
                self._lost(task)
                continue
            out.append(task)
        return out

    def _lost(self, task: Task) -> None:
        """Record a recovered task failed because its lost attempt was its last."""
        self._dirty[task.id] = task

    # -- lookups ------------------------------------------------------------------------------
    def result(self, task_id: str) -> TaskRecord | None:
        """The task's record: live or not yet flushed from memory, else its row; None when
        unknown or purged."""
        task = self._dirty.get(task_id) or self.get(task_id)
        if task is not None:
            return TaskRecord(
                task_id, label(task), task.attempt, self._results.get(task_id), task.error
            )
        return self._stored_record(task_id)

    def _by_key(self, key: str, task_id: str) -> Task | None:
        """The task of an idempotency key recorded by another task (an earlier run, or a
        flushed one), live if it still is."""
        found = self._stored_key(key)
        if found is None or found[0] == task_id:
            return None
        found_id, state_label, attempt, error = found
        live = self._dirty.get(found_id) or self.get(found_id)  # finished, not flushed; or live
        if live is not None:
            return live
        state = STATES.get(state_label, TaskState.FAILED)
        error = error if state is not TaskState.DONE else None
        return Task(id=found_id, idempotency_key=key, attempt=attempt, state=state, error=error)

    # -- transitions the journal records ------------------------------------------------------
    def put(self, task: Task) -> tuple[Task, bool]:
        text = encode_payload(task.payload, self._max_payload)
        key = task.idempotency_key
        if key is not None:
            seen = self._by_key(key, task.id)
            if seen is not None:
                return seen, False
        if self.get(task.id) is not None:
            raise TaskRejected(f"task_id: {task.id!r} is already in use")
        accepted, created = super().put(task)
        if created:
            task_id = task.id
            self._payloads[task_id] = text
            self._new.add(task_id)
            self._dirty[task_id] = task
        return accepted, created

    def claim(self, agent_id: str, now: float, lease: float | None = None) -> Task | None:
        task = super().claim(agent_id, now, lease)
        if task is not None:
            self._dirty[task.id] = task
        return task

    def start(self, agent_id: str, task: Task, now: float, lease: float | None = None) -> None:
        super().start(agent_id, task, now, lease)
        self._dirty[task.id] = task

    def defer(self, task_id: str, until: float, now: float) -> Task:
        task = super().defer(task_id, until, now)
        self._dirty[task_id] = task
        return task

    def ack(
        self,
        task_id: str,
        now: float,
        *,
        ok: bool,
        error: str | None = None,
        result: Any = None,
    ) -> Task:
        task = super().ack(task_id, now, ok=ok, error=error, result=result)
        self._dirty[task_id] = task
        if ok:
            self._results[task_id] = result
        return task

    def remove(self, task_id: str) -> Task | None:
        """Cancel a waiting task (journaled as cancelled); a caller that fails it instead, as a
        park timeout does, sets FAILED before the flush, and the row says failed."""
        task = super().remove(task_id)
        if task is not None:
            self._dirty[task_id] = task
        return task
