"""The durable embedded store: the memory store's structures, journaled to a SQLite file.

The journal (`store/journal.py`) keeps the tasks whose recorded state changed dirty; `flush`
writes their current rows in one transaction, and the runtime calls it once per event-loop
iteration. A crash therefore loses at most the transitions since the last flush (see
docs/architecture.md).

On open, the unfinished rows (waiting or running) are read back in submission order and handed
out once by `take_recovered`; the runtime submits them again, so they are re-routed from scratch.
A row that was running at the crash keeps its attempt: that attempt is presumed lost and counts
against `max_retries`. One process at a time: the file is locked (SQLite exclusive locking mode)
for as long as the store is open, and a second opener gets a `StoreError`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from swarmbalancer.errors import StoreError
from swarmbalancer.model import Priority, Task
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store.codec import decode, encode_names, encode_result
from swarmbalancer.store.journal import LABELS, JournalStore
from swarmbalancer.store.record import TaskRecord

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


class SqliteStore(JournalStore):
    """`MemoryStore` plus a journal of task rows in a SQLite file (WAL), written by `flush`.

    `synchronous="normal"` (the default) survives a killed process; `"full"` also survives a
    power cut or OS crash, at the cost of an fsync per flush. Finished rows are kept for
    `retention` seconds (Unix time), then purged `purge_batch` at a time.
    """

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
        super().__init__(
            queue_factory,
            retention=retention,
            max_payload_bytes=max_payload_bytes,
            remember_keys=remember_keys,
            purge_batch=purge_batch,
        )
        if synchronous not in ("normal", "full"):
            raise StoreError(f"store: synchronous must be normal or full, got {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self._db = _connect(self.path, synchronous)
        self._recovered = self._load_unfinished()

    # -- the journal --------------------------------------------------------------------------
    def _write(self, wall: float, shift: float) -> None:
        """Write the dirty tasks' rows in one transaction, and purge a batch when due."""
        inserts, updates = self._rows(self._dirty, wall, shift)
        db = self._db
        try:
            db.execute("BEGIN")
            if inserts:
                db.executemany(_INSERT, inserts)
            if updates:
                db.executemany(_UPDATE, updates)
            if self._purge_due(wall):
                self._purge(wall)
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")  # the dirty tasks stay dirty: the next flush tries again
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"store: {self.path}: cannot write ({exc})") from exc
            raise

    def _rows(
        self, dirty: dict[str, Task], wall: float, shift: float
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The INSERT rows of new tasks and the UPDATE rows of known ones; times are written as
        Unix times (`shift` takes the balancer's clock there), so another run can read them."""
        new, payloads, results = self._new, self._payloads, self._results
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for task_id, task in dirty.items():
            label = LABELS.get(task.state, "waiting")
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
        self._purged(wall, cursor.rowcount)

    def _close_backend(self) -> None:
        """Release the file (and its lock)."""
        self._db.close()

    # -- recovery -----------------------------------------------------------------------------
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
    def _stored_record(self, task_id: str) -> TaskRecord | None:
        row = self._db.execute(
            "SELECT state, attempt, result, error, finished_wall FROM tasks WHERE id = ?",
            (task_id,),
        ).fetchone()
        if row is None:
            return None
        state, attempt, result, error, finished_wall = row
        return TaskRecord(task_id, state, attempt, decode(result), error, finished_wall)

    def _stored_key(self, key: str) -> tuple[str, str, int, str | None] | None:
        row = self._db.execute(
            "SELECT id, state, attempt, error FROM tasks WHERE idem_key = ? ORDER BY seq LIMIT 1",
            (key,),
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])


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
