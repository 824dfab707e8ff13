"""The per-agent multi-level queue: weighted sharing, BACKGROUND, aging and starvation bounds."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from swarmbalancer.config import BalancerConfig
from swarmbalancer.model import WEIGHTED_LEVELS, Priority, Task
from swarmbalancer.policies.disciplines import DISCIPLINES
from swarmbalancer.policies.levels import LevelQueue

_ids = itertools.count()


def task(level: Priority, *, at: float = 0.0, tenant: str | None = None) -> Task:
    return Task(id=f"t{next(_ids)}", priority=level, level=level, tenant=tenant, enqueued_at=at)


def queue(**kwargs: object) -> LevelQueue:
    options: dict[str, object] = {"aging_boost": 0}
    options.update(kwargs)
    return LevelQueue(**options)  # type: ignore[arg-type]


def swrr_wait_bound(weights: tuple[float, ...], level: Priority) -> int:
    """Pops within which SWRR serves a level that stays non-empty, all four levels being busy.

    Credits start at 0 and sum to 0 before every pick. After a pick the picked credit is at least
    W/4 - W > -W and the others only grow, so every credit stays > -W; after adding the weights
    they sum to W, so none exceeds W + 3W = 4W. A level skipped k times in a row has credit
    > -W + k·w, hence k < 5W/w: it is served at least once in every ceil(5W/w) pops.
    """
    return math.ceil(5 * sum(weights) / weights[level])


# -- basics ----------------------------------------------------------------------------------------


def test_pop_on_an_empty_queue_returns_none() -> None:
    assert queue().pop(0.0) is None


def test_push_keeps_enqueued_at_and_pop_reports_the_level_dispatched_from() -> None:
    q = queue()
    t = task(Priority.LOW, at=3.5)
    q.push(t, 10.0)
    assert t.enqueued_at == 3.5
    assert q.level_len(Priority.LOW) == 1 and len(q) == 1
    assert q.pop(10.0) is t
    assert t.level is Priority.LOW and len(q) == 0


def test_pushing_a_task_that_is_already_queued_is_refused() -> None:
    q = queue()
    t = task(Priority.HIGH)
    q.push(t, 0.0)
    with pytest.raises(ValueError, match="already queued"):
        q.push(t, 0.0)


def test_constructor_refuses_bad_weights_and_aging_settings() -> None:
    with pytest.raises(ValueError, match="weights"):
        queue(weights=(1.0, 0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="aging_interval"):
        queue(aging_boost=1, aging_interval=0.0)
    with pytest.raises(ValueError, match="aging_boost"):
        queue(aging_boost=-1)
    with pytest.raises(ValueError, match="discipline"):
        queue(discipline="lifo")


def test_from_config_takes_weights_discipline_and_aging_from_the_config() -> None:
    cfg = BalancerConfig(
        level_weights={"critical": 8, "high": 4, "normal": 2, "low": 1},
        discipline="edf",
        aging_interval=2.0,
        aging_boost=2,
        aging_ceiling="critical",
    )
    q = LevelQueue.from_config(cfg)
    assert q.weights == (8.0, 4.0, 2.0, 1.0)
    t = task(Priority.BACKGROUND)
    q.push(t, 0.0)
    assert q.next_aging_at() == 2.0
    q.pop(4.0)  # BACKGROUND -> NORMAL at 2.0 -> CRITICAL at 4.0
    assert t.level is Priority.CRITICAL


def test_remove_returns_tasks_grouped_by_level_then_in_dispatch_order() -> None:
    q = queue(discipline="fifo")
    low_late, low_early = task(Priority.LOW, at=2.0), task(Priority.LOW, at=1.0)
    crit, bg = task(Priority.CRITICAL, at=3.0), task(Priority.BACKGROUND, at=0.0)
    kept = task(Priority.NORMAL)
    for t in (low_late, low_early, crit, bg, kept):
        q.push(t, t.enqueued_at)
    removed = q.remove([bg.id, low_late.id, crit.id, low_early.id, "unknown"])
    assert removed == [crit, low_early, low_late, bg]
    assert len(q) == 1 and q.level_len(Priority.LOW) == 0
    assert q.pop(5.0) is kept


def test_level_tasks_is_a_snapshot_in_dispatch_order() -> None:
    q = queue(discipline="edf")
    late, soon = task(Priority.HIGH), task(Priority.HIGH)
    late.deadline, soon.deadline = 9.0, 1.0
    q.push(late, 0.0)
    q.push(soon, 0.0)
    assert q.level_tasks(Priority.HIGH) == [soon, late]
    assert q.level_tasks(Priority.LOW) == []


def test_charge_reaches_the_cfs_discipline_of_the_level_the_task_came_from() -> None:
    q = queue(discipline="cfs", tenant_weights={"a": 1.0, "b": 1.0})
    a1, b1, a2, b2 = (task(Priority.NORMAL, tenant=name) for name in "abab")
    for t in (a1, b1, a2, b2):
        t.estimate = 1.0
    q.push(a1, 0.0)
    q.push(b1, 0.0)
    assert q.pop(0.0) is a1  # equal vruntime: by tenant name
    q.charge(a1, 10.0)  # a ran for 10, not 1: b's next tasks go first
    q.push(a2, 0.0)
    q.push(b2, 0.0)
    assert [q.pop(0.0), q.pop(0.0), q.pop(0.0)] == [b1, b2, a2]


# -- no loss, no duplicates, the dispatch rules hold under any interleaving ------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from(list(Priority)), st.sampled_from("ab")),
        st.tuples(st.just("pop"), st.floats(0.0, 4.0), st.floats(0.0, 3.0)),
        st.tuples(st.just("remove"), st.lists(st.integers(0, 60), max_size=4), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=120, deadline=None)
@given(
    st.sampled_from(DISCIPLINES),
    st.integers(0, 2),
    st.sampled_from([Priority.CRITICAL, Priority.HIGH, Priority.LOW]),
    operations,
)
def test_any_interleaving_of_push_pop_remove_returns_each_task_exactly_once(
    discipline: str, boost: int, ceiling: Priority, ops: list[tuple[object, object, object]]
) -> None:
    q = LevelQueue(
        discipline=discipline,
        tenant_weights={"a": 3.0},
        aging_interval=1.5,
        aging_boost=boost,
        aging_ceiling=ceiling,
    )
    now = 0.0
    pushed: list[Task] = []
    out: list[Task] = []
    for op, x, y in ops:
        if op == "push":
            assert isinstance(x, Priority) and isinstance(y, str)
            t = task(x, at=now, tenant=y)
            t.estimate = float(len(pushed) % 3)
            t.deadline = float(len(pushed) % 5) if len(pushed) % 2 else None
            q.push(t, now)
            pushed.append(t)
        elif op == "pop":
            assert isinstance(x, float) and isinstance(y, float)
            now += x
            waiting = len(q)
            got = q.pop(now)
            assert (got is None) == (waiting == 0)  # never None while a task waits
            if got is not None:
                out.append(got)
                if got.level is Priority.BACKGROUND:  # only when the weighted levels are empty
                    assert all(q.level_len(level) == 0 for level in WEIGHTED_LEVELS)
                if boost:  # aging never lifts a task above the ceiling, nor lowers it
                    assert got.level <= got.priority
                    assert got.level >= min(ceiling, got.priority)
                q.charge(got, y)
        else:
            assert isinstance(x, list)
            out.extend(q.remove([pushed[i].id for i in x if i < len(pushed)]))
        assert len(q) == sum(q.level_len(level) for level in Priority)
    while (rest := q.pop(now)) is not None:
        out.append(rest)
    assert sorted(t.id for t in out) == sorted(t.id for t in pushed)
    assert len({id(t) for t in out}) == len(pushed)


# -- weighted sharing ------------------------------------------------------------------------------


def saturated_shares(
    weights: tuple[float, float, float, float], busy: list[Priority], pops: int
) -> dict[Priority, float]:
    """Keep the `busy` levels (and BACKGROUND) backlogged, pop, and return each level's share."""
    q = queue(weights=weights)
    for level in [*busy, Priority.BACKGROUND]:
        for _ in range(3):
            q.push(task(level), 0.0)
    seen: Counter[Priority] = Counter()
    for i in range(pops):
        t = q.pop(float(i))
        assert t is not None
        seen[t.level] += 1
        q.push(task(t.level), float(i))
    return {level: seen[level] / pops for level in Priority}


def test_saturated_levels_get_40_30_20_10_percent_of_dispatches() -> None:
    shares = saturated_shares((40, 30, 20, 10), list(WEIGHTED_LEVELS), 2000)
    expected = {Priority.CRITICAL: 0.4, Priority.HIGH: 0.3, Priority.NORMAL: 0.2, Priority.LOW: 0.1}
    for level, share in expected.items():
        assert abs(shares[level] - share) <= 0.03
    assert shares[Priority.BACKGROUND] == 0.0


@settings(max_examples=40, deadline=None)
@given(
    st.tuples(*[st.floats(0.1, 100.0)] * 4),
    st.sets(st.sampled_from(WEIGHTED_LEVELS), min_size=1),
)
def test_busy_levels_split_dispatches_in_proportion_to_their_weights(
    weights: tuple[float, float, float, float], busy: set[Priority]
) -> None:
    shares = saturated_shares(weights, sorted(busy), 1000)
    total = sum(weights[level] for level in busy)
    for level in WEIGHTED_LEVELS:
        expected = weights[level] / total if level in busy else 0.0
        assert abs(shares[level] - expected) <= 0.03
    assert shares[Priority.BACKGROUND] == 0.0


def test_background_runs_only_when_the_weighted_levels_are_empty() -> None:
    q = queue()
    bg, normal = task(Priority.BACKGROUND), task(Priority.NORMAL)
    q.push(bg, 0.0)
    q.push(normal, 0.0)
    assert q.pop(0.0) is normal
    assert q.pop(0.0) is bg


# -- aging -----------------------------------------------------------------------------------------


def test_a_task_moves_up_boost_levels_each_interval_and_stops_at_the_ceiling() -> None:
    q = queue(aging_interval=5.0, aging_boost=1, aging_ceiling=Priority.HIGH)
    t = task(Priority.BACKGROUND)
    q.push(t, 0.0)
    q.push(task(Priority.CRITICAL), 0.0)  # keeps t queued: CRITICAL is served first
    expected = {4.9: Priority.BACKGROUND, 5.0: Priority.LOW, 10.0: Priority.NORMAL}
    for now, level in expected.items():
        q.push(task(Priority.CRITICAL), now)
        q.pop(now)
        assert t.level is level and q.level_len(level) == 1
        assert q.next_aging_at() == pytest.approx(5.0 * (int(now // 5) + 1))
    q.push(task(Priority.CRITICAL), 100.0)
    q.pop(100.0)  # reaches HIGH at 15.0 and never goes above it
    assert t.level is Priority.HIGH
    assert q.next_aging_at() is None


def test_aging_catches_up_in_one_pop_and_times_each_step_from_the_previous_one() -> None:
    q = queue(aging_interval=2.0, aging_boost=2, aging_ceiling=Priority.CRITICAL)
    t = task(Priority.BACKGROUND)
    q.push(t, 1.0)
    q.push(task(Priority.CRITICAL), 1.0)
    q.push(task(Priority.CRITICAL), 1.0)
    q.pop(4.9)  # BACKGROUND -> NORMAL at 3.0; next step due at 5.0
    assert t.level is Priority.NORMAL
    assert q.next_aging_at() == pytest.approx(5.0)
    q.pop(5.0)  # NORMAL -> CRITICAL at 5.0, then dispatched in SWRR turn
    assert q.next_aging_at() is None


def test_a_task_already_above_the_ceiling_stays_where_it_is() -> None:
    q = queue(aging_interval=1.0, aging_boost=3, aging_ceiling=Priority.NORMAL)
    high, low = task(Priority.HIGH), task(Priority.LOW)
    q.push(high, 0.0)
    q.push(low, 0.0)
    q.push(task(Priority.CRITICAL), 0.0)
    q.pop(10.0)
    assert high.level is Priority.HIGH
    assert low.level is Priority.NORMAL  # LOW - 3 is capped at the ceiling


def test_aging_is_disabled_by_a_zero_boost() -> None:
    q = queue(aging_interval=1.0, aging_boost=0)
    t = task(Priority.LOW)
    q.push(t, 0.0)
    q.push(task(Priority.CRITICAL), 0.0)
    q.pop(1000.0)
    assert t.level is Priority.LOW
    assert q.next_aging_at() is None


def test_an_aged_task_goes_ahead_of_tasks_that_joined_the_queue_after_it() -> None:
    q = queue(discipline="fifo", aging_interval=5.0, aging_boost=1)
    old = task(Priority.NORMAL, at=0.0)
    q.push(old, 0.0)
    newer = [task(Priority.HIGH, at=float(i)) for i in range(1, 4)]
    for t in newer:
        q.push(t, t.enqueued_at)
    q.push(task(Priority.CRITICAL, at=5.0), 5.0)
    q.pop(5.0)  # CRITICAL goes first; `old` ages into HIGH at 5.0
    assert q.level_tasks(Priority.HIGH) == [old, *newer]


def test_next_aging_at_is_the_earliest_instant_a_queued_task_ages() -> None:
    q = queue(aging_interval=5.0, aging_boost=1, aging_ceiling=Priority.HIGH)
    assert q.next_aging_at() is None
    q.push(task(Priority.HIGH), 0.0)  # at the ceiling: never ages
    assert q.next_aging_at() is None
    q.push(task(Priority.LOW), 3.0)
    q.push(task(Priority.NORMAL), 2.0)
    assert q.next_aging_at() == 7.0


# -- starvation bounds -----------------------------------------------------------------------------


def wait_under_flood(
    start: Priority,
    *,
    weights: tuple[float, float, float, float],
    interval: float,
    boost: int,
    ceiling: Priority,
    flood: list[Priority],
    horizon: int,
) -> float:
    """Time until a task queued at `start` at time 0 is dispatched, one pop per time unit, while
    every time unit one new (younger) task arrives at each level in `flood`."""
    q = LevelQueue(
        weights=weights,
        discipline="fifo",
        aging_interval=interval,
        aging_boost=boost,
        aging_ceiling=ceiling,
    )
    target = task(start, at=0.0)
    q.push(target, 0.0)
    for now in range(horizon):
        for level in flood:
            q.push(task(level, at=float(now)), float(now))
        if q.pop(float(now)) is target:
            return float(now)
    return math.inf


def flood_bound(
    start: Priority,
    weights: tuple[float, float, float, float],
    interval: float,
    boost: int,
    ceiling: Priority,
) -> float:
    """Aging lifts the task to the ceiling after ceil((start - ceiling) / boost) intervals. There
    every other task is younger, so with fifo it is at the head of its level, and SWRR over the
    four busy levels serves that level within `swrr_wait_bound` pops (one pop per time unit)."""
    steps = math.ceil((start - ceiling) / boost)
    return steps * interval + swrr_wait_bound(weights, ceiling)


ALL_BUSY = list(WEIGHTED_LEVELS)


def test_a_low_task_under_a_critical_flood_starts_within_the_aging_bound() -> None:
    # Bound: 2 intervals of 5 to reach HIGH, then ceil(5 * 100 / 30) = 17 pops: 27 time units.
    bound = flood_bound(Priority.LOW, (40, 30, 20, 10), 5.0, 1, Priority.HIGH)
    assert bound == 27.0
    for flood in ([Priority.CRITICAL, Priority.CRITICAL], ALL_BUSY):
        wait = wait_under_flood(
            Priority.LOW,
            weights=(40, 30, 20, 10),
            interval=5.0,
            boost=1,
            ceiling=Priority.HIGH,
            flood=flood,
            horizon=200,
        )
        assert wait <= bound


def test_a_background_task_under_a_flood_starts_within_the_aging_bound() -> None:
    # Without aging it would never run: every weighted level stays busy forever.
    never = wait_under_flood(
        Priority.BACKGROUND,
        weights=(40, 30, 20, 10),
        interval=5.0,
        boost=0,
        ceiling=Priority.HIGH,
        flood=ALL_BUSY,
        horizon=300,
    )
    assert never == math.inf
    # Bound: 3 intervals of 5 to reach HIGH, then 17 pops: 32 time units.
    bound = flood_bound(Priority.BACKGROUND, (40, 30, 20, 10), 5.0, 1, Priority.HIGH)
    assert bound == 32.0
    wait = wait_under_flood(
        Priority.BACKGROUND,
        weights=(40, 30, 20, 10),
        interval=5.0,
        boost=1,
        ceiling=Priority.HIGH,
        flood=ALL_BUSY,
        horizon=300,
    )
    assert wait <= bound


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([Priority.LOW, Priority.BACKGROUND]),
    st.tuples(*[st.floats(1.0, 50.0)] * 4),
    st.floats(1.0, 20.0),
    st.integers(1, 3),
    st.sampled_from([Priority.CRITICAL, Priority.HIGH, Priority.NORMAL]),
)
def test_starvation_bound_holds_for_any_weights_and_aging_settings(
    start: Priority,
    weights: tuple[float, float, float, float],
    interval: float,
    boost: int,
    ceiling: Priority,
) -> None:
    bound = flood_bound(start, weights, interval, boost, ceiling)
    wait = wait_under_flood(
        start,
        weights=weights,
        interval=interval,
        boost=boost,
        ceiling=ceiling,
        flood=ALL_BUSY,
        horizon=int(bound) + 2,
    )
    assert wait <= bound


# -- FIFO-true aging -------------------------------------------------------------------------------


def test_aging_never_lets_younger_tasks_of_one_class_overtake_older_ones() -> None:
    # One class, half of it aged into HIGH: it used to share 30:20 with its own younger half.
    q = LevelQueue(aging_interval=5.0, aging_boost=1, aging_ceiling=Priority.HIGH)
    tasks = [task(Priority.NORMAL, at=float(i)) for i in range(10)]
    for t in tasks:
        q.push(t, t.enqueued_at)
    popped = [q.pop(10.0) for _ in tasks]  # tasks 0..5 have aged into HIGH by now
    assert popped == tasks
    assert [t.level for t in popped] == [Priority.HIGH] * 6 + [Priority.NORMAL] * 4


def test_between_classes_at_one_effective_level_the_older_head_goes_first() -> None:
    q = LevelQueue(aging_interval=1.0, aging_boost=2, aging_ceiling=Priority.HIGH)
    aged = task(Priority.LOW, at=0.0)
    young = task(Priority.HIGH, at=0.5)
    q.push(aged, 0.0)
    q.push(young, 0.5)
    assert q.pop(1.0) is aged  # LOW -> HIGH at 1.0, older than the HIGH task
    assert aged.level is Priority.HIGH
    assert q.pop(1.0) is young


def test_a_turn_earned_by_aging_goes_to_an_older_task_of_a_more_urgent_class() -> None:
    # NORMAL's weight makes SWRR give NORMAL the next turn; `low` earned a place there by aging,
    # but `high` is older and more urgent, so the turn is lent to it.
    q = LevelQueue(weights=(10, 10, 80, 10), aging_interval=1.0, aging_ceiling=Priority.HIGH)
    high, low = task(Priority.HIGH, at=0.0), task(Priority.LOW, at=0.1)
    q.push(high, 0.0)
    q.push(low, 0.1)
    assert q.peek(1.5) is high
    assert q.pop(1.5) is high and high.level is Priority.HIGH
    assert q.pop(1.5) is low and low.level is Priority.NORMAL


def test_peek_is_what_pop_returns_and_changes_nothing() -> None:
    q = queue(weights=(40, 30, 20, 10))
    tasks = [task(level) for level in (Priority.CRITICAL, Priority.HIGH, Priority.LOW) * 2]
    for t in tasks:
        q.push(t, 0.0)
    assert queue().peek(0.0) is None
    while len(q):
        head = q.peek(0.0)
        assert q.peek(0.0) is head and head is not None and head.id in q
        assert q.pop(0.0) is head


def older(a: Task, b: Task) -> bool:
    return (a.enqueued_at, a.seq) < (b.enqueued_at, b.seq)


fifo_script = st.lists(
    st.one_of(
        st.tuples(
            st.just("push"), st.sampled_from(list(Priority)), st.floats(0.0, 1.0), st.integers(1, 4)
        ),
        st.tuples(st.just("pop"), st.just(Priority.NORMAL), st.floats(0.0, 3.0), st.just(1)),
        st.tuples(st.just("remove"), st.just(Priority.NORMAL), st.floats(0.0, 1.0), st.just(1)),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    fifo_script,
    st.booleans(),
    st.floats(0.5, 4.0),
    st.integers(0, 3),
    st.sampled_from([Priority.CRITICAL, Priority.HIGH, Priority.NORMAL, Priority.LOW]),
)
def test_no_task_is_popped_before_an_older_one_of_its_class_nor_by_aging_before_a_more_urgent_one(
    script: list[tuple[str, Priority, float, int]],
    one_class: bool,
    interval: float,
    boost: int,
    ceiling: Priority,
) -> None:
    q = LevelQueue(aging_interval=interval, aging_boost=boost, aging_ceiling=ceiling)
    now = 0.0
    waiting: dict[str, Task] = {}
    order: list[Task] = []
    for op, level, x, n in script:
        if op == "push":
            now += x
            for _ in range(n):
                t = task(Priority.NORMAL if one_class else level, at=now)
                q.push(t, now)
                waiting[t.id] = t
        elif op == "pop":
            now += x
            got = q.pop(now)
            assert (got is None) == (not waiting)
            if got is None:
                continue
            del waiting[got.id]
            order.append(got)
            for other in waiting.values():
                if older(other, got):
                    # never before an older task of its own class ...
                    assert other.priority != got.priority
                    # ... nor, in a turn earned by aging, before one of a more urgent class
                    assert not (got.level < got.priority and other.priority < got.priority)
        elif waiting:  # remove the task at a position chosen by x
            victim = sorted(waiting)[int(x * (len(waiting) - 1))]
            assert [t.id for t in q.remove([victim])] == [victim]
            del waiting[victim]
    rest = []
    while (t := q.pop(now)) is not None:
        rest.append(t)
    assert {t.id for t in rest} == set(waiting)
    if one_class:
        everything = order + rest
        for cls in Priority:
            mine = [t for t in everything if t.priority is cls]
            assert mine == sorted(mine, key=lambda t: (t.enqueued_at, t.seq))


peek_script = st.lists(
    st.tuples(
        st.sampled_from(["push", "pop", "peek"]),
        st.sampled_from(list(Priority)),
        st.floats(0.0, 2.0),
        st.sampled_from("abc"),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(DISCIPLINES), st.integers(0, 2), peek_script)
def test_peek_returns_the_next_pop_and_leaves_the_pop_sequence_unchanged(
    discipline: str, boost: int, script: list[tuple[str, Priority, float, str]]
) -> None:
    """Two queues get the same pushes and pops; one also gets peeks. Their pops must agree, and
    every peek must name the task the next pop at the same instant returns."""

    def fresh() -> LevelQueue:
        return LevelQueue(
            discipline=discipline,
            tenant_weights={"a": 2.0},
            aging_interval=1.0,
            aging_boost=boost,
            aging_ceiling=Priority.HIGH,
        )

    plain, peeked = fresh(), fresh()
    now = 0.0
    for i, (op, level, dt, tenant) in enumerate(script):
        now += dt
        if op == "push":
            twins = [task(level, at=now, tenant=tenant) for _ in range(2)]
            for twin, q in zip(twins, (plain, peeked), strict=True):
                twin.id, twin.seq = f"p{i}", i
                twin.estimate, twin.deadline = float(i % 3), float(i % 4) if i % 2 else None
                q.push(twin, now)
        elif op == "peek":
            head = peeked.peek(now)
            assert (head is None) == (len(peeked) == 0)
            got = peeked.pop(now)
            assert got is head
            other = plain.pop(now)
            assert (other is None and got is None) or (
                other is not None and got is not None and other.id == got.id
            )
            for q, t in ((peeked, got), (plain, other)):
                if t is not None:
                    q.charge(t, dt)
        else:
            a, b = plain.pop(now), peeked.pop(now)
            assert (a is None) == (b is None) and (a is None or b is None or a.id == b.id)
            for q, t in ((plain, a), (peeked, b)):
                if t is not None:
                    q.charge(t, dt)


# -- the fast lane ---------------------------------------------------------------------------------

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from(list(Priority)), st.floats(0, 3)),
        st.tuples(st.just("pop"), st.just(Priority.NORMAL), st.floats(0, 3)),
        st.tuples(st.just("remove"), st.just(Priority.NORMAL), st.floats(0, 1)),
        st.tuples(st.just("level_len"), st.sampled_from(list(Priority)), st.just(0.0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops=_OPS, normal_only=st.booleans())
@example(  # 2.05 - 1.05 < 1.0 in floating point, yet the full queue ages the task at 2.05
    ops=[
        ("pop", Priority.NORMAL, 0.05),
        ("push", Priority.CRITICAL, 1.0),
        ("pop", Priority.NORMAL, 1.0),
    ],
    normal_only=True,
)
def test_the_fast_lane_gives_the_same_order_and_levels_as_the_full_queue(
    ops: list[tuple[str, Priority, float]], normal_only: bool
) -> None:
    """A queue using its lane behaves, pop for pop, like one that never does (aging on, times
    moving forward, pushes with earlier `enqueued_at` as steals bring, removals, level queries)."""
    fast = LevelQueue(aging_interval=1.0, aging_boost=1)
    full = LevelQueue(aging_interval=1.0, aging_boost=1)
    full._lane_ok = False
    now, made = 0.0, 0
    for op, level, x in ops:
        if op == "push":
            now += x
            made += 1
            lvl = Priority.NORMAL if normal_only else level
            at = now - x if made % 5 == 0 else now  # some arrive with an older enqueued_at
            a = Task(id=f"x{made}", priority=lvl, level=lvl, enqueued_at=at, seq=made)
            b = Task(id=f"x{made}", priority=lvl, level=lvl, enqueued_at=at, seq=made)
            fast.push(a, now)
            full.push(b, now)
        elif op == "pop":
            now += x
            a_out, b_out = fast.pop(now), full.pop(now)
            assert (a_out and (a_out.id, a_out.level)) == (b_out and (b_out.id, b_out.level))
        elif op == "remove":
            ids = [f"x{i}" for i in range(1, made + 1) if i % 3 == int(x * 3) % 3]
            assert [t.id for t in fast.remove(ids)] == [t.id for t in full.remove(ids)]
        else:
            assert fast.level_len(level) == full.level_len(level)
        assert len(fast) == len(full)
    while (b_out := full.pop(now)) is not None:
        a_out = fast.pop(now)
        assert a_out is not None and (a_out.id, a_out.level) == (b_out.id, b_out.level)
    assert fast.pop(now) is None


def test_head_lists_the_next_tasks_to_leave_without_taking_any() -> None:
    lane = queue()
    tasks = [task(Priority.NORMAL, at=float(i)) for i in range(5)]
    for t in tasks:
        lane.push(t, t.enqueued_at)
    assert lane.head(3) == tasks[:3]  # the fast lane: exactly the pop order
    assert lane.head(10) == tasks and len(lane) == 5
    assert [lane.pop(9.0) for _ in range(5)] == tasks

    mixed = queue()
    low, high = task(Priority.LOW), task(Priority.HIGH)
    mixed.push(low, 0.0)
    mixed.push(high, 0.0)
    assert mixed.head(1) == [high] and mixed.head(5) == [high, low]  # level by level
    assert len(mixed) == 2 and queue().head(3) == []
