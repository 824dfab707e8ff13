"""Work stealing: who is robbed, how much is taken, and what is never taken."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmbalancer.config import BalancerConfig
from swarmbalancer.model import AgentSpec, AgentState, AgentStats, Priority, Task
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.policies.stealing import StealSettings, choose_victim, plan_steal


def agent(name: str, *, region: str | None = None, speed: float = 1.0) -> AgentState:
    return AgentState(
        spec=AgentSpec(name, region=region, speed_hint=speed), stats=AgentStats(speed=speed)
    )


def fill(a: AgentState, queue: LevelQueue, tasks: list[Task]) -> None:
    for t in tasks:
        queue.push(t, 0.0)
        a.queued += 1


def make_task(i: int, level: Priority, affinity: str | None = None, moves: int = 0) -> Task:
    t = Task.create(i, now=0.0, priority=level, task_id=f"t{i}", affinity=affinity)
    t.moves = moves
    return t


def test_heaviest_victim_is_chosen_and_locality_preferred() -> None:
    thief = agent("thief", region="eu")
    near, far = agent("near", region="eu"), agent("far", region="us")
    near.queued, far.queued = 8, 20
    s = StealSettings(threshold=5, locality_aware=True)
    assert choose_victim(thief, [thief, near, far], s, random.Random(0)) is near
    s = StealSettings(threshold=5, locality_aware=False)
    assert choose_victim(thief, [thief, near, far], s, random.Random(0)) is far
    near.queued = 5
    assert choose_victim(thief, [thief, near], s, random.Random(0)) is None


@settings(max_examples=80, deadline=None)
@given(
    levels=st.lists(st.sampled_from(list(Priority)), min_size=6, max_size=60),
    percentage=st.floats(0.1, 1.0),
    blocked=st.sets(st.integers(0, 59), max_size=10),
)
def test_stolen_tasks_keep_their_levels_and_order_and_respect_affinity(
    levels: list[Priority], percentage: float, blocked: set[int]
) -> None:
    thief, victim = agent("thief", region="eu"), agent("victim", region="us")
    queue = LevelQueue.from_config(BalancerConfig())
    tasks = [
        make_task(i, lvl, affinity="us" if i in blocked else None) for i, lvl in enumerate(levels)
    ]
    fill(victim, queue, tasks)
    s = StealSettings(threshold=0, percentage=percentage)
    plan = plan_steal(thief, [thief, victim], lambda _: queue, s, random.Random(0))
    movable = [t for t in tasks if t.allows("thief", "eu")]
    if not movable:
        assert plan is None
        return
    assert plan is not None
    wanted = max(1, int(len(tasks) * min(percentage, 0.5)))
    assert 1 <= len(plan.task_ids) <= wanted
    chosen = [t for t in tasks if t.id in plan.task_ids]
    assert all(t.allows("thief", "eu") for t in chosen)
    assert len(set(plan.task_ids)) == len(plan.task_ids)
    for level in Priority:  # per level, the stolen ones are the victim's last movable ones
        in_level = [t.id for t in queue.level_tasks(level) if t.allows("thief", "eu")]
        taken = [i for i in plan.task_ids if i in in_level]
        assert taken == in_level[len(in_level) - len(taken) :]


def test_a_task_that_moved_max_moves_times_is_not_stolen_again() -> None:
    thief, victim = agent("thief"), agent("victim")
    queue = LevelQueue.from_config(BalancerConfig())
    fill(victim, queue, [make_task(i, Priority.NORMAL, moves=2) for i in range(10)])
    plan = plan_steal(
        thief,
        [thief, victim],
        lambda _: queue,
        StealSettings(threshold=0, max_moves=2),
        random.Random(0),
    )
    assert plan is None


def test_a_slow_thief_takes_less_than_half_from_a_fast_victim() -> None:
    thief, victim = agent("slow", speed=1.0), agent("fast", speed=4.0)
    queue = LevelQueue.from_config(BalancerConfig())
    fill(victim, queue, [make_task(i, Priority.NORMAL) for i in range(20)])
    plan = plan_steal(
        thief, [thief, victim], lambda _: queue, StealSettings(threshold=0), random.Random(0)
    )
    assert plan is not None and len(plan.task_ids) == 4  # 20 * 1 / (1 + 4)
