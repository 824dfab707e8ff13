"""The contract every Store must pass. A store's test module subclasses `StoreContract` and
provides `make_store`; the same tests then run against memory, SQLite or Redis alike."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from swarmbalancer.model import AgentSpec, AgentState, AgentStats, Priority, Task, TaskState
from swarmbalancer.store.base import Store


def agent(agent_id: str, capacity: int = 2) -> AgentState:
    return AgentState(spec=AgentSpec(agent_id, capacity=capacity), stats=AgentStats(speed=1.0))


def task(
    task_id: str, *, priority: Priority = Priority.NORMAL, key: str | None = None, work: float = 1.0
) -> Task:
    t = Task.create(
        {"n": task_id}, now=0.0, priority=priority, task_id=task_id, idempotency_key=key
    )
    t.expected_work = work
    return t


def record_history(store: Store) -> dict[str, Task]:
    """Leave a durable store with one task in every state a crash can find (running, delayed,
    done, failed, queued, parked, shared), for the recovery tests of each durable store."""
    store.add_agent(agent("a", capacity=3))
    names = ["running", "delayed", "done", "failed", "queued", "parked", "shared"]
    tasks = {n: store.put(task(n))[0] for n in names}
    for n in ("running", "delayed", "done", "failed", "queued"):
        store.enqueue("a", tasks[n], 0.0)
    for _ in range(3):
        store.claim("a", 1.0)
    store.ack("done", 2.0, ok=True, result={"answer": 42})
    store.defer("delayed", 9.0, 2.0)
    store.claim("a", 2.0)
    store.ack("failed", 3.0, ok=False, error="boom")
    store.park(tasks["parked"], 3.0)
    store.share(tasks["shared"], 3.0)
    assert tasks["running"].state is TaskState.RUNNING
    return tasks


def check_recovered_history(again: Store) -> None:
    """A store reopened after `record_history` gives back every unfinished task, once, ready to
    route (the lost attempt counted), and keeps the finished ones' outcomes."""
    recovered = again.take_recovered(100.0)
    assert [t.id for t in recovered] == ["running", "delayed", "queued", "parked", "shared"]
    assert all(t.state is TaskState.PENDING and t.agent_id is None for t in recovered)
    by_id = {t.id: t for t in recovered}
    assert by_id["running"].attempt == 1  # the lost attempt counts
    assert by_id["queued"].payload == {"n": "queued"}
    assert again.take_recovered(100.0) == []
    done, failed = again.result("done"), again.result("failed")
    assert done is not None and done.state == "done" and done.result == {"answer": 42}
    assert failed is not None and failed.state == "failed" and failed.error == "boom"
    assert again.result("nope") is None


def record_last_attempt(store: Store) -> None:
    """Leave a task running its last permitted attempt when the store closes."""
    store.add_agent(agent("a"))
    last = task("last")
    last.max_retries = 0
    store.enqueue("a", store.put(last)[0], 0.0)
    store.claim("a", 0.0)


class FlushAfterEveryCall:
    """Mixed in before a durable store, writes its journal after every public call, so the
    contract also exercises every flush path."""

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if name.startswith("_") or name in ("flush", "close") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            out = attr(*args, **kwargs)
            self.flush(0.0)  # type: ignore[attr-defined]
            return out

        return call


class StoreContract:
    """Behaviour every store implementation must show."""

    def make_store(self) -> Store:
        raise NotImplementedError

    def test_a_claimed_task_is_in_flight_and_leaves_the_queue(self) -> None:
        store = self.make_store()
        store.add_agent(agent("a"))
        t, created = store.put(task("t1"))
        assert created
        store.enqueue("a", t, 0.0)
        assert store.agent("a").queued == 1 and store.agent("a").backlog == 1.0
        claimed = store.claim("a", 1.0)
        assert claimed is t and t.state is TaskState.RUNNING and t.attempt == 1
        assert store.agent("a").queued == 0 and store.agent("a").in_flight == 1
        assert store.claim("a", 1.0) is None

    def test_a_repeated_idempotency_key_returns_the_first_task(self) -> None:
        store = self.make_store()
        first, created = store.put(task("t1", key="k"))
        again, created_again = store.put(task("t2", key="k"))
        assert created and not created_again and again is first

    def test_move_takes_only_tasks_still_queued_at_the_source(self) -> None:
        store = self.make_store()
        for a in ("a", "b"):
            store.add_agent(agent(a, capacity=1))
        tasks = [store.put(task(f"t{i}"))[0] for i in range(4)]
        for t in tasks:
            store.enqueue("a", t, 0.0)
        running = store.claim("a", 0.0)
        assert running is not None
        moved = store.move([t.id for t in tasks], "a", "b", 1.0)
        assert {t.id for t in moved} == {t.id for t in tasks} - {running.id}
        assert all(t.moves == 1 and t.agent_id == "b" for t in moved)
        assert store.agent("a").queued == 0 and store.agent("b").queued == 3
        assert store.agent("b").backlog == 3.0

    def test_ack_finishes_a_task_and_frees_its_slot(self) -> None:
        store = self.make_store()
        store.add_agent(agent("a"))
        t = store.put(task("t1"))[0]
        store.enqueue("a", t, 0.0)
        store.claim("a", 0.0)
        done = store.ack("t1", 2.0, ok=True)
        assert done.state is TaskState.DONE and done.finished_at == 2.0
        assert store.agent("a").in_flight == 0 and store.agent("a").backlog == 0.0
        assert list(store.open_tasks()) == []
        with pytest.raises((ValueError, KeyError)):
            store.ack("t1", 3.0, ok=True)

    def test_deferred_tasks_come_back_due_in_time_order(self) -> None:
        store = self.make_store()
        store.add_agent(agent("a", capacity=2))
        for name in ("x", "y"):
            store.enqueue("a", store.put(task(name))[0], 0.0)
        store.claim("a", 0.0)
        store.claim("a", 0.0)
        store.defer("y", 5.0, 1.0)
        store.defer("x", 3.0, 1.0)
        assert store.agent("a").in_flight == 0
        assert store.next_due() == 3.0
        assert store.due(2.0) == []
        assert [t.id for t in store.due(10.0)] == ["x", "y"]
        assert store.next_due() is None

    def test_evacuate_and_remove_return_every_queued_task(self) -> None:
        store = self.make_store()
        store.add_agent(agent("a", capacity=1))
        for i in range(3):
            store.enqueue("a", store.put(task(f"t{i}"))[0], 0.0)
        store.claim("a", 0.0)
        with pytest.raises(ValueError):
            store.remove_agent("a")
        assert sorted(t.id for t in store.evacuate("a")) == ["t1", "t2"]
        assert store.agent("a").queued == 0

    def test_an_expired_lease_is_reported(self) -> None:
        store = self.make_store()
        store.add_agent(agent("a"))
        store.enqueue("a", store.put(task("t"))[0], 0.0)
        store.claim("a", 0.0, lease=1.0)
        assert store.expired(0.5) == []
        assert [t.id for t in store.expired(2.0)] == ["t"]
        store.renew("t", 5.0)
        assert store.expired(2.0) == []

    def test_parked_tasks_come_back_in_order(self) -> None:
        store = self.make_store()
        for name in ("p", "q"):
            store.park(store.put(task(name))[0], 0.0)
        assert [t.id for t in store.unpark()] == ["p", "q"]
        assert store.unpark() == []

    def test_remove_takes_a_waiting_task_out_wherever_it_waits_but_never_a_running_one(
        self,
    ) -> None:
        store = self.make_store()
        store.add_agent(agent("a", capacity=1))
        queued, running, delayed, parked = (store.put(task(n))[0] for n in "qrdp")
        store.enqueue("a", running, 0.0)
        assert store.claim("a", 0.0) is running
        store.enqueue("a", delayed, 0.0)
        store.ack("r", 0.5, ok=True)
        assert store.claim("a", 0.5) is delayed
        store.defer("d", 5.0, 1.0)
        store.enqueue("a", queued, 1.0)
        store.park(parked, 1.0)
        running = store.put(task("r2"))[0]
        store.add_agent(agent("b", capacity=1))
        store.enqueue("b", running, 1.0)
        store.claim("b", 1.0)
        assert store.remove("r2") is None and running.state is TaskState.RUNNING
        assert store.remove("nope") is None
        for name, t in (("q", queued), ("d", delayed), ("p", parked)):
            assert store.remove(name) is t and t.state is TaskState.CANCELLED
            assert store.remove(name) is None
        assert store.agent("a").queued == 0 and store.agent("a").backlog == 0.0
        assert store.next_due() is None and store.due(10.0) == [] and store.unpark() == []
        assert [t.id for t in store.open_tasks()] == ["r2"]

    def test_a_refused_duplicate_task_id_does_not_register_its_idempotency_key(self) -> None:
        store = self.make_store()
        store.put(task("t1"))
        with pytest.raises(ValueError):
            store.put(task("t1", key="k"))
        fresh, created = store.put(task("t2", key="k"))
        assert created and fresh.id == "t2"

    def test_counters_add_up(self) -> None:
        store = self.make_store()
        store.incr("steals", 2)
        store.incr("steals")
        assert store.counters() == {"steals": 3}

    def test_no_task_is_lost_or_duplicated_under_any_sequence_of_operations(self) -> None:
        run_state_machine(self.make_store)


def run_state_machine(make_store: object) -> None:
    """Drive random enqueue/claim/move/ack/defer/due/evacuate sequences and check placement."""

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.store: Store = make_store()  # type: ignore[operator]
            for a in ("a", "b", "c"):
                self.store.add_agent(agent(a, capacity=2))
            self.now = 0.0
            self.n = 0
            self.finished: set[str] = set()
            self.unplaced: list[Task] = []
            self.accepted: set[str] = set()

        @rule(level=st.sampled_from(list(Priority)), target_agent=st.sampled_from("abc"))
        def submit(self, level: Priority, target_agent: str) -> None:
            self.n += 1
            t, _ = self.store.put(task(f"t{self.n}", priority=level))
            self.accepted.add(t.id)
            self.store.enqueue(target_agent, t, self.now)

        @rule(target_agent=st.sampled_from("abc"))
        def claim(self, target_agent: str) -> None:
            if self.store.agent(target_agent).free_slots > 0:
                self.store.claim(target_agent, self.now)

        @rule(src=st.sampled_from("abc"), dst=st.sampled_from("abc"), k=st.integers(1, 4))
        def move(self, src: str, dst: str, k: int) -> None:
            if src == dst:
                return
            ids = [t.id for level in Priority for t in self.store.queue(src).level_tasks(level)][:k]
            self.store.move(ids, src, dst, self.now)

        @rule(ok=st.booleans(), retry=st.booleans())
        def finish_one(self, ok: bool, retry: bool) -> None:
            running = [t for t in self.store.open_tasks() if t.state is TaskState.RUNNING]
            if not running:
                return
            t = min(running, key=lambda x: x.seq)
            if retry:
                self.store.defer(t.id, self.now + 1.0, self.now)
            else:
                self.store.ack(t.id, self.now, ok=ok)
                self.finished.add(t.id)

        @rule(pick=st.integers(0, 10_000))
        def cancel(self, pick: int) -> None:
            waiting = sorted(
                (t for t in self.store.open_tasks() if t not in self.unplaced),
                key=lambda x: x.seq,
            )
            if not waiting:
                return
            t = waiting[pick % len(waiting)]
            was_running = t.state is TaskState.RUNNING
            removed = self.store.remove(t.id)
            assert (removed is None) == was_running
            if removed is not None:
                assert removed.state is TaskState.CANCELLED
                self.finished.add(t.id)

        @rule()
        def advance(self) -> None:
            self.now += 0.5
            self.unplaced.extend(self.store.due(self.now))

        @precondition(lambda self: bool(self.unplaced))
        @rule(target_agent=st.sampled_from("abc"))
        def place(self, target_agent: str) -> None:
            self.store.enqueue(target_agent, self.unplaced.pop(), self.now)

        @rule(src=st.sampled_from("abc"))
        def evacuate(self, src: str) -> None:
            self.unplaced.extend(self.store.evacuate(src))

        @invariant()
        def every_task_is_in_exactly_one_place(self) -> None:
            places: Counter[str] = Counter()
            for a in ("a", "b", "c"):
                q = self.store.queue(a)
                ids = [t.id for level in Priority for t in q.level_tasks(level)]
                assert len(q) == len(ids) == self.store.agent(a).queued
                places.update(ids)
            open_ids = {t.id for t in self.store.open_tasks()}
            running = {t.id for t in self.store.open_tasks() if t.state is TaskState.RUNNING}
            delayed = {t.id for t in self.store.open_tasks() if t.state is TaskState.DELAYED}
            places.update(running)
            places.update(delayed)
            places.update(t.id for t in self.unplaced)
            assert all(v == 1 for v in places.values()), places
            assert set(places) == open_ids
            assert open_ids | self.finished == self.accepted
            assert not open_ids & self.finished
            in_flight = sum(self.store.agent(a).in_flight for a in "abc")
            assert in_flight == len(running)

    Machine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
    Machine.TestCase().runTest()
