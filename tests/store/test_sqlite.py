"""The SQLite store: the store contract, then what only a durable store does (journal, reopen,
recovery, lock, retention, wire safety)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.contract import (
    FlushAfterEveryCall,
    StoreContract,
    agent,
    check_recovered_history,
    record_history,
    record_last_attempt,
    task,
)
from swarmbalancer.config import BalancerConfig
from swarmbalancer.errors import StoreError, TaskRejected
from swarmbalancer.model import TaskState
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store.base import Store
from swarmbalancer.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(60)

_CFG = BalancerConfig()


def queues() -> LevelQueue:
    return LevelQueue.from_config(_CFG)


def open_at(path: Path, **options: Any) -> SqliteStore:
    return SqliteStore(path, queues, **options)


def rows(path: Path) -> dict[str, tuple[str, int, str | None]]:
    """id -> (state, attempt, result JSON), read with a plain connection (store closed)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        found = db.execute("SELECT id, state, attempt, result FROM tasks").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in found}


class _FlushingSqliteStore(FlushAfterEveryCall, SqliteStore):
    """Writes its journal after every call, so the contract also exercises every flush path."""


class TestSqliteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _files(self) -> Iterator[None]:
        with tempfile.TemporaryDirectory() as folder:
            self.folder = Path(folder)
            self.opened: list[SqliteStore] = []
            yield
            for store in self.opened:
                store.close()

    def make_store(self) -> Store:
        fd, name = tempfile.mkstemp(".db", dir=self.folder)
        os.close(fd)
        store = _FlushingSqliteStore(Path(name), queues)
        self.opened.append(store)
        return store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "swarm.db"


def test_reopening_gives_back_every_unfinished_task_and_keeps_finished_results(db: Path) -> None:
    store = open_at(db)
    record_history(store)
    store.close()
    again = open_at(db)
    check_recovered_history(again)
    again.close()


def test_a_running_task_whose_lost_attempt_was_its_last_is_failed_on_recovery(db: Path) -> None:
    store = open_at(db)
    record_last_attempt(store)
    store.close()
    again = open_at(db)
    assert again.take_recovered(0.0) == []
    record = again.result("last")
    assert record is not None and record.state == "failed" and "lost" in (record.error or "")
    again.close()
    assert rows(db)["last"][0] == "failed"


def test_times_move_onto_the_new_clock(db: Path) -> None:
    store = open_at(db)
    t = task("t")
    t.submitted_at, t.deadline = 1000.0, 1005.0
    store.park(store.put(t)[0], 1000.0)
    store.flush(1001.0)  # the balancer's clock reads 1001 at this flush
    store.close()
    again = open_at(db)
    (back,) = again.take_recovered(5.0)  # a new clock, started near 0
    assert back.deadline is not None
    assert back.deadline - back.submitted_at == pytest.approx(5.0)
    assert back.submitted_at == pytest.approx(4.0, abs=0.5)  # 1 s before "now", give or take
    again.close()


def test_a_second_store_on_the_same_file_is_refused_until_the_first_closes(db: Path) -> None:
    first = open_at(db)
    with pytest.raises(StoreError, match="in use"):
        open_at(db)
    first.close()
    open_at(db).close()


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="store"):
        open_at(path)
    with pytest.raises(StoreError, match="does not exist"):
        open_at(tmp_path / "missing" / "x.db")


def test_idempotency_keys_survive_a_restart(db: Path) -> None:
    store = open_at(db)
    store.add_agent(agent("a"))
    first = store.put(task("first", key="k"))[0]
    store.enqueue("a", first, 0.0)
    store.claim("a", 0.0)
    store.ack("first", 1.0, ok=True, result=7)
    store.put(task("live", key="k2"))
    store.close()
    again = open_at(db)
    recovered = again.take_recovered(0.0)
    assert [t.id for t in recovered] == ["live"]
    assert again.put(recovered[0]) == (recovered[0], True)  # resubmitted as itself
    seen, created = again.put(task("second", key="k"))
    assert not created and seen.id == "first" and seen.state is TaskState.DONE
    seen, created = again.put(task("other", key="k2"))
    assert not created and seen is recovered[0]
    again.close()


def test_payloads_must_be_json_and_within_the_limit(db: Path) -> None:
    store = open_at(db, max_payload_bytes=64)
    bad = task("bad")
    bad.payload = {"f": object()}
    with pytest.raises(TaskRejected, match="payload: not JSON"):
        store.put(bad)
    nan = task("nan")
    nan.payload = float("nan")
    with pytest.raises(TaskRejected, match="payload"):
        store.put(nan)
    big = task("big")
    big.payload = "x" * 100
    with pytest.raises(TaskRejected, match=r"payload: 102 bytes .* maxPayloadBytes"):
        store.put(big)
    assert store.get("bad") is None and store.get("big") is None
    store.close()
    assert rows(db) == {}


def test_a_result_that_is_not_json_is_recorded_as_such(db: Path) -> None:
    store = open_at(db)
    store.add_agent(agent("a"))
    store.enqueue("a", store.put(task("t"))[0], 0.0)
    store.claim("a", 0.0)
    store.ack("t", 1.0, ok=True, result={1, 2})
    store.flush(1.0)
    record = store.result("t")
    assert record is not None and record.state == "done" and record.result is None
    assert "not JSON" in (record.error or "")
    store.close()


def test_results_are_readable_before_and_after_the_flush(db: Path) -> None:
    store = open_at(db)
    store.add_agent(agent("a"))
    store.enqueue("a", store.put(task("t"))[0], 0.0)
    record = store.result("t")
    assert record is not None and record.state == "waiting"
    store.claim("a", 0.0)
    store.ack("t", 1.0, ok=True, result=[1, 2])
    pending = store.result("t")
    assert pending is not None and pending.state == "done" and pending.result == [1, 2]
    store.flush(1.0)
    flushed = store.result("t")
    assert flushed is not None and flushed.result == [1, 2] and flushed.finished_wall
    store.close()


def test_a_removed_task_is_not_recovered(db: Path) -> None:
    store = open_at(db)
    store.park(store.put(task("gone"))[0], 0.0)
    store.flush(0.0)
    assert store.remove("gone") is not None
    store.close()
    assert rows(db)["gone"][0] == "cancelled"
    again = open_at(db)
    assert again.take_recovered(0.0) == []
    again.close()


def test_expired_results_are_purged_in_batches(db: Path) -> None:
    store = open_at(db, retention=0.0, purge_batch=2)
    store.add_agent(agent("a", capacity=5))
    for i in range(5):
        store.enqueue("a", store.put(task(f"t{i}"))[0], 0.0)
    store.put(task("waiting"))
    for i in range(5):
        store.claim("a", 0.0)
        store.ack(f"t{i}", 1.0, ok=True)
    store.flush(1.0)  # writes the outcomes; their retention (0 s) runs from now
    left = []
    for _ in range(4):
        store._next_purge = 0.0  # a purge is due at every flush from here
        store.flush(2.0)
        left.append(store._db.execute("SELECT count(*) FROM tasks").fetchone()[0])
    assert left == [4, 2, 1, 1]  # two at a time, never the unfinished task
    store.close()


OPS = [
    "put",
    "share",
    "park",
    "claim",
    "start_shared",
    "ack",
    "fail",
    "defer",
    "due",
    "remove",
    "cancel_running",
    "abandon",
    "flush",
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(OPS), max_size=40))
def test_after_any_sequence_a_reopen_recovers_exactly_the_unfinished_tasks(ops: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.db"
        store = open_at(path)
        store.add_agent(agent("a", capacity=3))
        finished: dict[str, str] = {}
        now, n = 0.0, 0
        for op in ops:
            now += 1.0
            open_now = list(store.open_tasks())
            running = [t for t in open_now if t.state is TaskState.RUNNING]
            waiting = [t for t in open_now if t.state is not TaskState.RUNNING]
            if op in ("put", "share", "park"):
                n += 1
                new = store.put(task(f"t{n}"))[0]
                if op == "put":
                    store.enqueue("a", new, now)
                elif op == "share":
                    store.share(new, now)
                else:
                    store.park(new, now)
            elif op == "claim" and store.agent("a").free_slots:
                store.claim("a", now)
            elif op == "start_shared" and store.agent("a").free_slots:
                shared = store.take_shared(now)
                if shared is not None:
                    store.start("a", shared, now)  # late binding: a started attempt, as claim
            elif op in ("ack", "fail") and running:
                store.ack(running[0].id, now, ok=op == "ack", result=n)
                finished[running[0].id] = "done" if op == "ack" else "failed"
            elif op == "cancel_running" and running:  # Coordinator.finish(cancelled=True)
                store.ack(running[0].id, now, ok=False, error="cancelled")
                running[0].state = TaskState.CANCELLED
                finished[running[0].id] = "cancelled"
            elif op == "defer" and running:
                store.defer(running[0].id, now + 0.5, now)
            elif op == "due":
                for t in store.due(now):
                    store.enqueue("a", t, now)
            elif op == "remove" and waiting:  # Coordinator.cancel
                assert store.remove(waiting[-1].id) is waiting[-1]
                finished[waiting[-1].id] = "cancelled"
            elif op == "abandon" and waiting:  # Coordinator._abandon: a park timeout
                assert store.remove(waiting[0].id) is waiting[0]
                waiting[0].state = TaskState.FAILED
                finished[waiting[0].id] = "failed"
            elif op == "flush":
                store.flush(now)
        open_ids = {t.id: t.attempt for t in store.open_tasks()}
        store.close()
        again = open_at(path)
        assert {t.id: t.attempt for t in again.take_recovered(now)} == open_ids
        again.close()
        states = {k: v[0] for k, v in rows(path).items()}
        assert {k: v for k, v in states.items() if v not in ("waiting", "running")} == finished
        assert {k for k, v in states.items() if v in ("waiting", "running")} == set(open_ids)


def test_a_shared_task_is_waiting_and_its_start_is_a_started_attempt(db: Path) -> None:
    store = open_at(db)
    store.add_agent(agent("a"))
    store.share(store.put(task("s"))[0], 0.0)
    store.flush(0.0)
    read = "SELECT state, attempt FROM tasks WHERE id = 's'"  # the lock: read on its connection
    assert store._db.execute(read).fetchone() == ("waiting", 0)
    shared = store.take_shared(1.0)
    assert shared is not None
    store.start("a", shared, 1.0)
    store.flush(1.0)
    assert store._db.execute(read).fetchone() == ("running", 1)
    store.close()


def test_a_park_timeout_is_recorded_failed_and_not_recovered(db: Path) -> None:
    store = open_at(db)
    parked = store.put(task("p"))[0]
    store.park(parked, 0.0)
    store.flush(0.0)
    assert store.remove("p") is parked  # Coordinator._abandon: remove, then FAILED
    parked.state, parked.error = TaskState.FAILED, "parkTimeout: no agent for 60s"
    store.close()
    assert rows(db)["p"][0] == "failed"
    again = open_at(db)
    assert again.take_recovered(0.0) == []
    record = again.result("p")
    assert record is not None and record.state == "failed" and "parkTimeout" in str(record.error)
    again.close()


def test_dropped_cancellations_leave_the_tasks_as_they_were_last_flushed(db: Path) -> None:
    store = open_at(db)
    store.add_agent(agent("a"))
    for name in ("runs", "waits"):
        store.enqueue("a", store.put(task(name))[0], 0.0)
    store.claim("a", 0.0)
    store.flush(0.0)
    store.put(task("unflushed"))
    for name in ("waits", "unflushed"):  # a balancer stopping without draining cancels these
        assert store.remove(name) is not None
    runs = store.ack("runs", 1.0, ok=False, error="cancelled")
    runs.state = TaskState.CANCELLED  # as Coordinator.finish(cancelled=True) leaves it
    store.drop_cancellations()
    store.close()
    assert {k: v[:2] for k, v in rows(db).items()} == {
        "runs": ("running", 1),
        "waits": ("waiting", 0),
    }
    again = open_at(db)
    assert [(t.id, t.attempt) for t in again.take_recovered(2.0)] == [("runs", 1), ("waits", 0)]
    again.close()


def test_a_failed_write_is_a_store_error_and_the_next_flush_writes_it(db: Path) -> None:
    store = open_at(db)
    store.put(task("t"))
    real = store._db

    class DiskFull:
        """The store's connection, whose writes of task rows fail as on a full disk."""

        @property
        def in_transaction(self) -> bool:
            return real.in_transaction

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            return real.execute(sql, *args)

        def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
            raise sqlite3.OperationalError("database or disk is full")

    store._db = DiskFull()  # type: ignore[assignment]
    with pytest.raises(StoreError, match=r"^store: .*cannot write \(database or disk is full\)"):
        store.flush(0.0)
    store._db = real
    store.flush(0.0)
    store.close()
    assert rows(db)["t"][0] == "waiting"
