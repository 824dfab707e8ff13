"""The leader's `LeaseDesk` for direct attempts (settled by the balancer, no future each): an
outcome that came for a lease ahead is handed to the attempt that starts on it, a lost worker's
direct attempts go to `on_lost` with their leases revoked, an outcome handed over with
`resolve` is what the task's next handler call gets, and a stop revokes what still waits."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from clusterhelpers import lease_desk
from store.contract import task
from swarmbalancer.cluster.agents import Direct, WorkerLost
from swarmbalancer.cluster.keys import SwarmKeys


def test_a_direct_attempt_on_a_lease_ahead_takes_that_lease_and_waits_for_its_outcome() -> None:
    d = lease_desk()
    t = task("a")
    d.prefetch("w", t)
    (lease_ahead,) = [lease for lease, _ in d.ahead["w"].values()]
    lease_id, early = d.begin("w", t, 5.0)
    assert lease_id == lease_ahead and early is None
    assert d.direct == {lease_id: (t, "w", 5.0)} and d.ahead["w"] == {}
    handout = d.take()
    assert handout is not None and len(handout.leases) == 1  # one lease, not a second one


def test_an_outcome_that_came_before_its_task_started_is_handed_to_the_direct_attempt() -> None:
    d = lease_desk()
    t = task("a")
    d.prefetch("w", t)
    (lease_id,) = [lease for lease, _ in d.ahead["w"].values()]
    outcome = {"lease": lease_id, "ok": True, "result": 1}
    d._early[lease_id] = outcome  # what pump_outcomes keeps for a lease ahead
    assert d.begin("w", t, 0.0) == (lease_id, outcome)
    assert d.direct == {}  # settled by the caller at once: nothing waits


def test_a_withdrawn_lease_ahead_whose_outcome_came_counts_it_late() -> None:
    d = lease_desk()
    t = task("a")
    d.prefetch("w", t)
    (lease_id,) = [lease for lease, _ in d.ahead["w"].values()]
    d._early[lease_id] = {"lease": lease_id, "ok": True}
    d.withdraw("w", t.id)
    handout = d.take()
    assert handout is not None and handout.late == 1 and handout.revoked == [lease_id]
    assert d.begin("w", t, 0.0)[0] != lease_id  # started here later: a new lease


def test_a_lost_worker_hands_its_direct_attempts_to_on_lost_and_revokes_every_lease() -> None:
    d = lease_desk()
    lost: list[tuple[list[tuple[str, Direct]], BaseException]] = []
    d.on_lost = lambda attempts, error: lost.append((attempts, error))
    running, ahead, other = task("r"), task("a"), task("o")
    lease_id, _ = d.begin("w", running, 1.0)
    d.prefetch("w", ahead)
    d.begin("v", other, 1.0)
    error = WorkerLost("gone")
    assert d.fail_agent("w", error) == 1  # the running attempt; the lease ahead is forgotten
    assert lost == [([(lease_id, (running, "w", 1.0))], error)]
    assert list(d.direct.values()) == [(other, "v", 1.0)] and "w" not in d.ahead
    handout = d.take()
    assert handout is not None and handout.voided == ["w"] and len(handout.revoked) == 2


def test_a_resolved_outcome_is_what_the_tasks_handler_gets_from_its_next_lease() -> None:
    async def main() -> None:
        d = lease_desk()
        t = task("a")
        lease_id, _ = d.begin("w", t, 0.0)
        outcome: dict[str, Any] = {"lease": lease_id, "ok": False, "error": "boom"}
        d.resolve("w", t, lease_id, outcome)
        assert d.direct == {}
        got_id, future = d.lease("w", t)
        assert got_id == lease_id and future.result() == outcome
        again, fresh = d.lease("w", t)  # handed over once: a later attempt gets a new lease
        assert again != lease_id and not fresh.done()
        d.resolve("w", t, again, WorkerLost("gone"))
        assert isinstance(d.lease("w", t)[1].exception(), WorkerLost)

    asyncio.run(main())


def test_a_stop_revokes_the_leases_of_the_direct_attempts_still_waiting() -> None:
    d = lease_desk()
    first, _ = d.begin("w", task("a"), 0.0)
    second, _ = d.begin("w", task("b"), 0.0)
    d.ended("w", first, revoke=False)  # settled
    d.take()
    d.revoke_direct()
    handout = d.take()
    assert handout is not None and handout.revoked == [second] and d.direct == {}


def test_leases_queued_in_the_loop_turn_of_a_wake_up_go_in_the_same_round_trip() -> None:
    from types import SimpleNamespace

    from redis.asyncio import Redis as AsyncRedis

    from swarmbalancer.cluster.writer import Writer

    sent: list[tuple[Any, ...]] = []

    class Link:
        async def call(self, *commands: tuple[Any, ...]) -> list[Any]:
            sent.extend(commands)
            return [len(commands)] * len(commands)

    async def main() -> None:
        redis = AsyncRedis.from_url("redis://127.0.0.1:1/0")  # never connected: no call made
        store: Any = SimpleNamespace(
            keys=SwarmKeys("d"),
            lease=SimpleNamespace(token="tok"),
            flush_keys=[],
            take_journal=lambda now: None,
        )
        writer = Writer(redis, store, lambda: 0.0, epoch=1, on_lost=lambda: None)
        writer._link = Link()  # type: ignore[assignment]
        d = lease_desk()
        d._wake = writer.wake
        writer.serve(d)
        running = asyncio.create_task(writer.run_forever())
        d.begin("w", task("started"), 0.0)  # a dispatch starts an attempt (the writer wakes)...
        asyncio.get_running_loop().call_soon(d.prefetch, "w", task("ahead"))  # ...then leases ahead
        await writer.drain()
        running.cancel()
        await redis.aclose()

    asyncio.run(main())
    assert len(sent) == 1  # one round trip, both leases in it, the started one first
    entries = [arg for arg in sent[0] if isinstance(arg, str) and arg.startswith('{"task":')]
    assert [json.loads(e)["task"] for e in entries] == ["started", "ahead"]
