"""The leader's `Prefetcher` keeps each worker's leases ahead equal to the head of its queue in
the store: up to capacity x prefetch, withdrawn when the task leaves that queue (moved by a
steal or a migration, cancelled, started elsewhere), kept when the worker starts it."""

from __future__ import annotations

from typing import Any

from store.contract import agent, task
from swarmbalancer.cluster.prefetch import Prefetcher
from swarmbalancer.model import Task
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store.memory import MemoryStore


class Desk:
    """What the Prefetcher uses of a LeaseDesk, recording its calls."""

    def __init__(self) -> None:
        self.ahead: dict[str, dict[str, Any]] = {}
        self.withdrawn: list[str] = []

    def prefetch(self, agent_id: str, t: Task) -> None:
        self.ahead.setdefault(agent_id, {})[t.id] = ("lease", "entry", None)

    def withdraw(self, agent_id: str, task_id: str) -> None:
        if self.ahead.get(agent_id, {}).pop(task_id, None) is not None:
            self.withdrawn.append(task_id)


def swarm() -> tuple[MemoryStore, Desk, Prefetcher]:
    store = MemoryStore(LevelQueue)
    store.add_agent(agent("a", capacity=2))
    store.add_agent(agent("b", capacity=2))
    desk = Desk()
    return store, desk, Prefetcher(desk, store, per_slot=1)  # type: ignore[arg-type]


def queue_at(store: MemoryStore, agent_id: str, *ids: str) -> None:
    for i in ids:
        t = task(i)
        store.put(t)
        store.enqueue(agent_id, t, 0.0)


def test_the_head_of_each_queue_is_leased_ahead_up_to_capacity_times_prefetch() -> None:
    store, desk, prefetch = swarm()
    queue_at(store, "a", "t1", "t2", "t3", "t4")
    prefetch()
    assert list(desk.ahead["a"]) == ["t1", "t2"] and "b" not in desk.ahead
    prefetch()  # nothing changed: nothing more
    assert list(desk.ahead["a"]) == ["t1", "t2"] and not desk.withdrawn


def test_a_task_moved_to_another_worker_is_withdrawn_and_the_next_one_leased() -> None:
    store, desk, prefetch = swarm()
    queue_at(store, "a", "t1", "t2", "t3")
    prefetch()
    store.move(["t1"], "a", "b", 1.0)  # stolen by b
    prefetch()
    assert desk.withdrawn == ["t1"]
    assert list(desk.ahead["a"]) == ["t2", "t3"] and list(desk.ahead["b"]) == ["t1"]


def test_a_started_task_keeps_its_lease_and_a_cancelled_or_evacuated_one_loses_it() -> None:
    store, desk, prefetch = swarm()
    queue_at(store, "a", "t1", "t2")
    prefetch()
    assert store.claim("a", 1.0) is not None  # t1 starts on a: its attempt takes the lease
    store.remove("t2")  # cancelled while queued
    prefetch()
    assert desk.withdrawn == ["t2"] and list(desk.ahead["a"]) == ["t1"]
    queue_at(store, "a", "t3")
    prefetch()
    store.evacuate("a")
    prefetch()
    assert desk.withdrawn == ["t2", "t3"]


def test_without_prefetch_nothing_is_leased_ahead() -> None:
    store, desk, _ = swarm()
    queue_at(store, "a", "t1")
    Prefetcher(desk, store, per_slot=0)()  # type: ignore[arg-type]
    assert desk.ahead == {}


def test_a_lost_workers_leases_ahead_are_forgotten_without_failing_any_attempt() -> None:
    import asyncio

    from clusterhelpers import lease_desk
    from swarmbalancer.cluster.agents import WorkerLost

    async def main() -> None:
        desk = lease_desk("p")
        running, ahead = task("r"), task("a")
        _, attempt = desk.lease("w", running)
        desk.prefetch("w", ahead)
        assert desk.fail_agent("w", WorkerLost("gone")) == 1  # the running attempt only
        assert isinstance(attempt.exception(), WorkerLost)  # the running attempt fails
        assert desk.ahead == {}
        handout = desk.take()
        assert handout is not None and handout.voided == ["w"] and len(handout.revoked) == 2
        lease_id, future = desk.lease("w", ahead)  # started later (elsewhere): a new lease
        assert not future.done() and lease_id not in handout.revoked

    asyncio.run(main())
