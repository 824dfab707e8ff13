"""The durable embedded store: the memory store's structures, journaled to a SQLite file.

Scheduling stays in memory, exactly as in `MemoryStore`, so the policies and the hot path keep
their speed. Every transition recovery needs (a task accepted, an attempt started by `claim` or,
for a task taken from the shared queue, by `start`, a retry deferred, an outcome, a
cancellation by `remove`) marks the task dirty; `flush` writes the dirty tasks' current rows in
one transaction, and the runtime calls it once per event-loop iteration. Moves between queues
(`share`, `take_shared`, `enqueue`, `move`, `evacuate`, `park`, `due`) are not journaled: the
task is `waiting` wherever it waits, and recovery routes it again from scratch. A crash
therefore loses at most the transitions since the last flush (see docs/architecture.md).

On open, the unfinished rows (waiting or running) are read back in submission order and handed
out once by `take_recovered`; the runtime submits them again, so they are re-routed from scratch.
A row that was running at the crash keeps its attempt: that attempt is presumed lost and counts
against `max_retries`. One process at a time: the file is locked (SQLite exclusive locking mode)
for as long as the store is open, and a second opener gets a `StoreError`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from swarmbalancer.errors import StoreError, TaskRejected
from swarmbalancer.metrics.timing import RollingTimer
from swarmbalancer.model import Priority, Task, TaskState
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store.codec import decode, encode_names, encode_payload, encode_result
from swarmbalancer.store.memory import MemoryStore
from swarmbalancer.store.record import RecordState, TaskRecord

Synchronous = Literal["normal", "full"]

#: Schema version kept in `PRAGMA user_version`; a newer file is refused rather than misread.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    agent TEXT,
    priority INTEGER NOT NULL,
    level INTEGER NOT NULL,
    tenant TEXT,
    deadline REAL,
    estimate REAL,
    affinity TEXT,
    region TEXT,
    idem_key TEXT,
    max_retries INTEGER NOT NULL,
    period REAL,
    tried TEXT,
    submitted_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    finished_wall REAL,
    payload TEXT NOT NULL,
    result TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS tasks_unfinished ON tasks(seq) WHERE state IN ('waiting', 'running');
CREATE INDEX IF NOT EXISTS tasks_key ON tasks(idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_expiry ON tasks(finished_wall) WHERE finished_wall IS NOT NULL;
"""

_INSERT = (
    "INSERT OR REPLACE INTO tasks (id, seq, state, attempt, agent, priority, level, tenant,"
    " deadline, estimate, affinity, region, idem_key, max_retries, period, tried, submitted_at,"
    " started_at, finished_at, finished_wall, payload, result, error)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE = (
    "UPDATE tasks SET state = ?, attempt = ?, agent = ?, level = ?, tried = ?, started_at = ?,"
    " finished_at = ?, finished_wall = ?, result = ?, error = ? WHERE id = ?"
)
_UNFINISHED = (
    "SELECT id, state, attempt, priority, level, tenant, deadline, estimate, affinity, region,"
    " idem_key, max_retries, period, tried, submitted_at, payload, error"
    " FROM tasks WHERE state IN ('waiting', 'running') ORDER BY seq"
)

#: A finished row's state back as a task state (a row found by its idempotency key).
_STATES = {"done": TaskState.DONE, "failed": TaskState.FAILED, "cancelled": TaskState.CANCELLED}

_LABELS: dict[TaskState, RecordState] = {
    TaskState.RUNNING: "running",
    TaskState.DONE: "done",
    TaskState.FAILED: "failed",
    TaskState.CANCELLED: "cancelled",
}


class SqliteStore(MemoryStore):
    """`MemoryStore` plus a journal of task rows in a SQLite file (WAL), written by `flush`.

    `synchronous="normal"` (the default) survives a killed process; `"full"` also survives a
    power cut or OS crash, at the cost of an fsync per flush. Finished rows are kept for
    `retention` seconds (Unix time), then purged `purge_batch` at a time.
    """

    durable = True

    def __init__(
        self,
        path: str | Path,
        queue_factory: Callable[[], LevelQueue],
        *,
        synchronous: Synchronous = "normal",
        retention: float = 86_400.0,
        max_payload_bytes: int = 1 << 20,
        remember_keys: int = 100_000,
        purge_batch: int = 1000,
    ) -> None:
        super().__init__(queue_factory, remember_keys=remember_keys)
        if synchronous not in ("normal", "full"):
            raise StoreError(f"store: synchronous must be normal or full, got {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self._retention = retention
        self._max_payload = max_payload_bytes
        self._purge_batch = purge_batch
        self._next_purge = 0.0
        self._dirty: dict[str, Task] = {}
        self._new: set[str] = set()  # dirty tasks whose full row (payload included) is written
        self._payloads: dict[str, str] = {}  # JSON of new tasks' payloads, encoded at put
        self._results: dict[str, Any] = {}
        #: each flush that wrote something: its time and rows (bottleneck-analyze's store latency)
        self.flush_timing = RollingTimer()
        self._db = _connect(self.path, synchronous)
        self._closed = False
        self._last_now = 0.0
        self._recovered = self._load_unfinished()

    # -- the journal --------------------------------------------------------------------------
    def flush(self, now: float) -> None:
        """Write every transition since the last flush in one transaction, then purge a batch of
        expired results when due. A no-op when nothing changed and no purge is due."""
        wall = time.time()
        dirty = self._dirty
        if not dirty and wall < self._next_purge:
            return
        self._last_now = now
        started = time.perf_counter()
        inserts, updates = self._rows(dirty, wall, wall - now)
        db = self._db
        try:
            db.execute("BEGIN")
            if inserts:
                db.executemany(_INSERT, inserts)
            if updates:
                db.executemany(_UPDATE, updates)
            if wall >= self._next_purge:
                self._purge(wall)
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")  # the dirty tasks stay dirty: the next flush tries again
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"store: {self.path}: cannot write ({exc})") from exc
            raise
        self.flush_timing.since(started, len(dirty))
        dirty.clear()
        self._new.clear()
        self._payloads.clear()
        self._results.clear()

    def _rows(
        self, dirty: dict[str, Task], wall: float, shift: float
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The INSERT rows of new tasks and the UPDATE rows of known ones; times are written as
        Unix times (`shift` takes the balancer's clock there), so another run can read them."""
        new, payloads, results = self._new, self._payloads, self._results
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for task_id, task in dirty.items():
            label = _LABELS.get(task.state, "waiting")
            result = error = finished_wall = None
            if label != "waiting" and label != "running":
                finished_wall = wall
                error = task.error
                if task_id in results:
                    result, error = encode_result(results[task_id])
            tried = encode_names(task.tried_agents)
            started = None if task.started_at is None else task.started_at + shift
            finished = None if task.finished_at is None else task.finished_at + shift
            if task_id in new:
                inserts.append(
                    (
                        task_id,
                        task.seq,
                        label,
                        task.attempt,
                        task.agent_id,
                        int(task.priority),
                        int(task.level),
                        task.tenant,
                        None if task.deadline is None else task.deadline + shift,
                        task.estimate,
                        encode_names(task.affinity),
                        task.region,
                        task.idempotency_key,
                        task.max_retries,
                        task.period,
                        tried,
                        task.submitted_at + shift,
                        started,
                        finished,
                        finished_wall,
                        payloads[task_id],
                        result,
                        error,
                    )
                )
            else:
                updates.append(
                    (
                        label,
                        task.attempt,
                        task.agent_id,
                        int(task.level),
                        tried,
                        started,
                        finished,
                        finished_wall,
                        result,
                        error,
                        task_id,
                    )
                )
        return inserts, updates

    def _purge(self, wall: float) -> None:
        """Delete up to one batch of results older than the retention; come back at the next
        flush while a full batch went, else after a pause."""
        cursor = self._db.execute(
            "DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks"
            " WHERE finished_wall IS NOT NULL AND finished_wall < ? LIMIT ?)",
            (wall - self._retention, self._purge_batch),
        )
        if cursor.rowcount >= self._purge_batch:
            self._next_purge = wall
        else:
            self._next_purge = wall + max(1.0, min(60.0, self._retention / 10))

    def close(self) -> None:
        """Flush what is pending and release the file (and its lock)."""
        if self._closed:
            return
        if self._dirty:
            self.flush(self._last_now)
        self._db.close()
        self._closed = True

    def drop_cancellations(self) -> None:
        """Forget the cancellations not flushed yet, so those tasks stay unfinished in the file
        (waiting, or running: that attempt is then presumed lost) for the next store on it to
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
                self._dirty[task.id] = task
                continue
            out.append(task)
        return out

    def _load_unfinished(self) -> list[tuple[Task, bool]]:
        out = []
        for row in self._db.execute(_UNFINISHED):
            (task_id, state, attempt, prio, level, tenant, deadline, estimate, affinity) = row[:9]
            (region, key, max_retries, period, tried, submitted_at, payload, error) = row[9:]
            aff = decode(affinity)
            task = Task(
                id=task_id,
                payload=decode(payload),
                priority=Priority(prio),
                level=Priority(level),
                tenant=tenant,
                deadline=deadline,
                estimate=estimate,
                affinity=None if aff is None else frozenset(aff),
                region=region,
                idempotency_key=key,
                max_retries=max_retries,
                period=period,
                attempt=attempt,
                tried_agents=tuple(decode(tried) or ()),
                submitted_at=submitted_at,
                error=error,
            )
            out.append((task, state == "running"))
        return out

    # -- lookups ------------------------------------------------------------------------------
    def result(self, task_id: str) -> TaskRecord | None:
        """The task's record: live or not yet flushed from memory, else its row; None when
        unknown or purged."""
        task = self._dirty.get(task_id) or self.get(task_id)
        if task is not None:
            return TaskRecord(
                task_id,
                _LABELS.get(task.state, "waiting"),
                task.attempt,
                self._results.get(task_id),
                task.error,
            )
        row = self._db.execute(
            "SELECT state, attempt, result, error, finished_wall FROM tasks WHERE id = ?",
            (task_id,),
        ).fetchone()
        if row is None:
            return None
        state, attempt, result, error, finished_wall = row
        return TaskRecord(task_id, state, attempt, decode(result), error, finished_wall)

    def _by_key(self, key: str, task_id: str) -> Task | None:
        """The task of an idempotency key recorded in the file by another task (an earlier run,
        or a flushed one), live if it still is."""
        row = self._db.execute(
            "SELECT id, state, attempt, error FROM tasks WHERE idem_key = ? ORDER BY seq LIMIT 1",
            (key,),
        ).fetchone()
        if row is None or row[0] == task_id:
            return None
        live = self._dirty.get(row[0]) or self.get(row[0])  # finished but not flushed, or live
        if live is not None:
            return live
        state = _STATES.get(row[1], TaskState.FAILED)
        error = row[3] if state is not TaskState.DONE else None
        return Task(id=row[0], idempotency_key=key, attempt=row[2], state=state, error=error)

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


def _connect(path: Path, synchronous: Synchronous) -> sqlite3.Connection:
    """Open (or create) the file in WAL mode and take its lock for this store's lifetime."""
    where = f"store: {path}"
    if not path.parent.is_dir():
        raise StoreError(f"{where}: directory {path.parent} does not exist")
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=0)
    except sqlite3.Error as exc:
        raise StoreError(f"{where}: cannot open ({exc})") from None
    try:
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous.upper()}")
        db.execute("BEGIN IMMEDIATE")  # takes the exclusive lock, held until close
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.execute("ROLLBACK")
            raise StoreError(f"{where}: schema version {version} is newer than this release")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        db.close()
        if "locked" in str(exc) or "busy" in str(exc):
            raise StoreError(f"{where}: in use by another balancer (the file is locked)") from None
        raise StoreError(f"{where}: cannot open ({exc})") from None
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StoreError(f"{where}: not a swarmbalancer SQLite file ({exc})") from None
    except StoreError:
        db.close()
        raise
    return db
