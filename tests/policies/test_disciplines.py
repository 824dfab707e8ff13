"""In-level disciplines: fifo, edf (Jackson's rule), cfs and wfq (weighted fairness)."""

from __future__ import annotations

import itertools
import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmbalancer.model import Task
from swarmbalancer.policies.disciplines import (
    DISCIPLINES,
    CompletelyFair,
    Discipline,
    EarliestDeadlineFirst,
    Fifo,
    WeightedFairQueueing,
    make_discipline,
)

FAIR_WEIGHTS = {"a": 4.0, "b": 2.0, "c": 1.0, "d": 1.0}


def task(
    tid: str,
    *,
    at: float = 0.0,
    tenant: str | None = None,
    deadline: float | None = None,
    estimate: float | None = None,
    seq: int | None = None,
) -> Task:
    t = Task(id=tid, tenant=tenant, deadline=deadline, estimate=estimate, enqueued_at=at)
    if seq is not None:
        t.seq = seq
    return t


def drain(d: Discipline, now: float = 0.0) -> list[str]:
    out = []
    while (t := d.pop(now)) is not None:
        out.append(t.id)
    return out


def jain(xs: list[float]) -> float:
    """Jain's fairness index: (Σx)² / (n Σx²); 1.0 when all are equal."""
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs))


# -- fifo ------------------------------------------------------------------------------------------


def test_fifo_dispatches_by_time_of_entering_the_queue_then_by_seq() -> None:
    d = Fifo()
    d.push(task("late", at=2.0, seq=1), 2.0)
    d.push(task("tie-b", at=1.0, seq=3), 2.0)
    d.push(task("tie-a", at=1.0, seq=2), 2.0)
    assert drain(d) == ["tie-a", "tie-b", "late"]


def test_fifo_puts_a_task_that_aged_in_ahead_of_tasks_queued_after_it() -> None:
    d = Fifo()
    d.push(task("newer", at=5.0), 5.0)
    d.push(task("aged-in", at=1.0), 6.0)  # entered the agent's queue at 1.0, this level at 6.0
    assert drain(d) == ["aged-in", "newer"]


# -- edf -------------------------------------------------------------------------------------------


def test_edf_dispatches_earliest_deadline_first_and_deadline_free_tasks_last_in_fifo_order() -> (
    None
):
    d = EarliestDeadlineFirst()
    d.push(task("free-2", at=2.0), 0.0)
    d.push(task("d9", at=3.0, deadline=9.0), 0.0)
    d.push(task("free-1", at=1.0), 0.0)
    d.push(task("d4", at=4.0, deadline=4.0), 0.0)
    d.push(task("d9-earlier", at=0.5, deadline=9.0), 0.0)
    assert drain(d) == ["d4", "d9-earlier", "d9", "free-1", "free-2"]


jobs = st.lists(st.tuples(st.integers(1, 5), st.integers(1, 20)), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(jobs)
def test_edf_order_meets_every_deadline_whenever_any_order_does_jacksons_rule(
    batch: list[tuple[int, int]],
) -> None:
    def feasible(order: list[tuple[int, int]]) -> bool:
        clock = 0
        for runtime, deadline in order:
            clock += runtime
            if clock > deadline:
                return False
        return True

    d = EarliestDeadlineFirst()
    by_id = {}
    for i, (runtime, deadline) in enumerate(batch):
        d.push(task(f"j{i}", deadline=float(deadline), estimate=float(runtime)), 0.0)
        by_id[f"j{i}"] = (runtime, deadline)
    edf_order = [by_id[tid] for tid in drain(d)]
    any_order = any(feasible(list(p)) for p in itertools.permutations(batch))
    assert feasible(edf_order) == any_order


# -- all disciplines -------------------------------------------------------------------------------


def test_make_discipline_builds_each_named_discipline_and_refuses_unknown_names() -> None:
    kinds = {name: type(make_discipline(name, FAIR_WEIGHTS)) for name in DISCIPLINES}
    assert kinds == {
        "fifo": Fifo,
        "edf": EarliestDeadlineFirst,
        "cfs": CompletelyFair,
        "wfq": WeightedFairQueueing,
    }
    with pytest.raises(ValueError, match="fifo, edf, cfs, wfq"):
        make_discipline("lifo", {})


def test_a_non_positive_tenant_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="'x'"):
        make_discipline("cfs", {"x": 0.0})


@pytest.mark.parametrize("name", DISCIPLINES)
def test_pushing_a_task_id_that_is_already_queued_is_refused(name: str) -> None:
    d = make_discipline(name, {})
    d.push(task("same"), 0.0)
    with pytest.raises(ValueError, match="already queued"):
        d.push(task("same"), 0.0)


queued_tasks = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", None]),
        st.one_of(st.none(), st.floats(0.0, 10.0)),
        st.one_of(st.none(), st.floats(0.0, 50.0)),
        st.floats(0.0, 5.0),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(DISCIPLINES),
    queued_tasks,
    st.sets(st.integers(0, 29)),
)
def test_ordered_is_the_pop_order_and_remove_returns_dispatch_order(
    name: str, specs: list[tuple[str | None, float | None, float | None, float]], drop: set[int]
) -> None:
    def build() -> Discipline:
        d = make_discipline(name, FAIR_WEIGHTS)
        for i, (tenant, estimate, deadline, at) in enumerate(specs):
            d.push(
                task(f"t{i}", at=at, tenant=tenant, estimate=estimate, deadline=deadline, seq=i), at
            )
        return d

    d = build()
    snapshot = [t.id for t in d.ordered()]
    assert snapshot == drain(build())
    wanted = [f"t{i}" for i in sorted(drop)] + ["absent"]
    removed = [t.id for t in d.remove(wanted)]
    assert removed == [tid for tid in snapshot if tid in set(wanted)]
    assert len(d) == len(specs) - len(removed)
    rest = [t.id for t in d.ordered()]
    assert drain(d) == rest
    assert sorted(rest) == sorted(tid for tid in snapshot if tid not in set(wanted))
    if name != "cfs":  # cfs re-shares: a tenant is no longer charged for what was taken away
        assert rest == [tid for tid in snapshot if tid not in set(wanted)]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(DISCIPLINES), queued_tasks, st.lists(st.floats(0.0, 3.0), max_size=30))
def test_peek_names_the_task_the_next_pop_returns_and_changes_nothing(
    name: str,
    specs: list[tuple[str | None, float | None, float | None, float]],
    runtimes: list[float],
) -> None:
    d = make_discipline(name, FAIR_WEIGHTS)
    for i, (tenant, estimate, deadline, at) in enumerate(specs):
        d.push(task(f"t{i}", at=at, tenant=tenant, estimate=estimate, deadline=deadline, seq=i), at)
    expected = [t.id for t in d.ordered()]
    popped = []
    for i in range(len(specs)):
        head = d.peek(0.0)
        assert head is not None and d.peek(0.0) is head and head.id in d
        assert d.pop(0.0) is head
        popped.append(head.id)
        if name == "cfs" and i < len(runtimes):  # charging reorders later pops, not this one
            d.charge(head, runtimes[i])
    assert d.peek(0.0) is None
    if name != "cfs" or not runtimes:
        assert popped == expected


# -- cfs -------------------------------------------------------------------------------------------


def run_backlogged(
    d: Discipline,
    weights: dict[str, float],
    runtime_of: random.Random,
    pops: int,
    *,
    in_flight: int,
    known_sizes: bool,
) -> dict[str, float]:
    """Keep every tenant backlogged, pop `pops` tasks, charge actual runtimes `in_flight` late."""
    counter = itertools.count()
    sizes: dict[str, float] = {}

    def feed(tenant: str) -> None:
        size = runtime_of.uniform(0.1, 5.0)
        tid = f"{tenant}{next(counter)}"
        sizes[tid] = size
        d.push(task(tid, tenant=tenant, estimate=size if known_sizes else None), 0.0)

    for tenant in weights:
        for _ in range(3):
            feed(tenant)
    service = dict.fromkeys(weights, 0.0)
    running: deque[Task] = deque()
    for _ in range(pops):
        t = d.pop(0.0)
        assert t is not None and t.tenant is not None
        feed(t.tenant)
        running.append(t)
        if len(running) > in_flight:
            done = running.popleft()
            d.charge(done, sizes[done.id])
            assert done.tenant is not None
            service[done.tenant] += sizes[done.id]
    return service


@pytest.mark.parametrize("in_flight", [0, 8])
def test_cfs_shares_actual_runtime_by_tenant_weight_with_jain_index_at_least_0_99(
    in_flight: int,
) -> None:
    d = CompletelyFair(FAIR_WEIGHTS)
    service = run_backlogged(
        d, FAIR_WEIGHTS, random.Random(7), 4000, in_flight=in_flight, known_sizes=False
    )
    assert jain([service[t] / w for t, w in FAIR_WEIGHTS.items()]) >= 0.99


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.floats(0.5, 8.0), min_size=2, max_size=5),
    st.integers(0, 2**32),
    st.booleans(),
)
def test_cfs_is_fair_for_any_weights_and_runtimes(
    raw: list[float], seed: int, known_sizes: bool
) -> None:
    weights = {f"t{i}": w for i, w in enumerate(raw)}
    d = CompletelyFair(weights)
    service = run_backlogged(
        d, weights, random.Random(seed), 1500, in_flight=4, known_sizes=known_sizes
    )
    assert jain([service[t] / w for t, w in weights.items()]) >= 0.99


def test_cfs_advances_virtual_runtime_by_actual_runtime_over_weight() -> None:
    d = CompletelyFair({"a": 2.0})
    first = task("1", tenant="a")
    d.push(first, 0.0)
    popped = d.pop(0.0)
    assert popped is first
    assert d.vruntime("a") == pytest.approx(1.0 / 2.0)  # provisional: no estimate, no mean yet
    d.charge(first, 3.0)
    assert d.vruntime("a") == pytest.approx(3.0 / 2.0)
    d.push(task("2", tenant="a"), 0.0)
    d.pop(0.0)
    assert d.vruntime("a") == pytest.approx(3.0 / 2.0 + 3.0 / 2.0)  # provisional: mean runtime 3.0
    d.charge(task("2", tenant="a"), 1.0)
    assert d.vruntime("a") == pytest.approx(3.0 / 2.0 + 1.0 / 2.0)


def test_cfs_puts_tasks_without_tenant_in_their_own_tenant() -> None:
    d = CompletelyFair({})
    d.push(task("anon", tenant=None), 0.0)
    d.push(task("named", tenant="x"), 0.0)
    assert drain(d) == ["anon", "named"]  # equal vruntime: tenant "" sorts before "x"


def test_cfs_newcomer_starts_at_the_least_active_vruntime_and_cannot_monopolise() -> None:
    d = CompletelyFair({})
    for i in range(200):
        d.push(task(f"a{i}", tenant="a"), 0.0)
    for _ in range(100):
        t = d.pop(0.0)
        assert t is not None
        d.charge(t, 1.0)
    for i in range(100):
        d.push(task(f"b{i}", tenant="b"), 0.0)
    assert d.vruntime("b") == pytest.approx(d.vruntime("a"))
    next_twenty = [d.pop(0.0) for _ in range(20)]
    assert sum(1 for t in next_twenty if t is not None and t.tenant == "b") == 10


def test_cfs_tenant_returning_to_an_idle_level_starts_at_the_last_min_vruntime() -> None:
    d = CompletelyFair({})
    for i in range(50):
        d.push(task(f"a{i}", tenant="a"), 0.0)
    for t in [d.pop(0.0) for _ in range(50)]:
        assert t is not None
        d.charge(t, 1.0)
    d.push(task("b0", tenant="b"), 0.0)  # the level is empty: b must not start from zero
    assert d.vruntime("b") >= 49.0


# -- wfq -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("known_sizes", [True, False])
def test_wfq_shares_work_by_tenant_weight_with_jain_index_at_least_0_99(known_sizes: bool) -> None:
    d = WeightedFairQueueing(FAIR_WEIGHTS)
    service = run_backlogged(
        d, FAIR_WEIGHTS, random.Random(11), 4000, in_flight=8, known_sizes=known_sizes
    )
    assert jain([service[t] / w for t, w in FAIR_WEIGHTS.items()]) >= 0.99


def test_wfq_tags_a_task_with_max_of_virtual_time_and_flow_finish_plus_size_over_weight() -> None:
    d = WeightedFairQueueing({"a": 2.0})
    d.push(task("a1", tenant="a", estimate=4.0, seq=1), 0.0)  # F = 0 + 4/2 = 2
    d.push(task("a2", tenant="a", estimate=4.0, seq=2), 0.0)  # F = 2 + 2 = 4
    d.push(task("b1", tenant="b", seq=3), 0.0)  # size 1, weight 1: F = 1
    assert drain(d) == ["b1", "a1", "a2"]
    assert d.virtual_time == pytest.approx(4.0)
    d.push(task("b2", tenant="b", seq=4), 0.0)  # F = max(V=4, 1) + 1 = 5
    d.push(task("a3", tenant="a", estimate=2.0, seq=5), 0.0)  # F = max(4, 4) + 1 = 5: tie by seq
    assert drain(d) == ["b2", "a3"]


def test_wfq_does_not_charge_a_flow_for_tasks_taken_away_from_it() -> None:
    d = WeightedFairQueueing({})
    d.push(task("a1", tenant="a", estimate=10.0, seq=1), 0.0)
    d.remove(["a1"])
    d.push(task("a2", tenant="a", seq=2), 0.0)  # F = V + 1, not 10 + 1
    d.push(task("b1", tenant="b", estimate=2.0, seq=3), 0.0)
    assert drain(d) == ["a2", "b1"]
