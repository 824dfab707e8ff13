"""Work stealing: an idle agent takes queued work from an overloaded one.

Only an agent with a free slot and an empty queue steals, only from a victim with more than
`steal_threshold` queued tasks. It takes `steal_percentage` of the victim's queue, scaled down by
relative speed so a slow thief does not take more than it can finish before the victim would
(`share = s_thief / (s_thief + s_victim)`, which is 1/2 for equal speeds). Tasks are taken from
the tail of every level in proportion to that level's length, so both priorities and order within
a level are kept. Tasks whose affinity excludes the thief, or that have moved `max_moves` times,
stay where they are.

Under late binding agents hold only a few bound tasks, so the threshold rarely applies; there an
idle agent with nothing to pull takes back a bound task it would finish before its holder could
(`plan_rescue`), which repairs a reservation made on a wrong estimate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from swarmbalancer.model import AgentState, Priority, Task
from swarmbalancer.policies.adaptive import MAX_ERROR, wait_time, work_left
from swarmbalancer.policies.views import QueueView

VictimSelection = Literal["heaviest", "random", "locality"]


@dataclass(frozen=True, slots=True)
class StealSettings:
    """The knobs of stealing, as configured."""

    threshold: int = 5
    percentage: float = 0.5
    victim_selection: VictimSelection = "heaviest"
    locality_aware: bool = True
    max_moves: int = 2


@dataclass(frozen=True, slots=True)
class StealPlan:
    """Move these queued tasks from `victim` to `thief`."""

    victim: str
    thief: str
    task_ids: tuple[str, ...]


def choose_victim(
    thief: AgentState, agents: Sequence[AgentState], settings: StealSettings, rng: random.Random
) -> AgentState | None:
    """The agent to steal from, or None when no queue is longer than the threshold."""
    victims = [a for a in agents if a is not thief and a.queued > settings.threshold]
    if not victims:
        return None
    prefer_local = settings.victim_selection == "locality" or settings.locality_aware
    if prefer_local and thief.spec.region is not None:
        local = [a for a in victims if a.spec.region == thief.spec.region]
        victims = local or victims
    if settings.victim_selection == "random":
        return victims[rng.randrange(len(victims))]
    return max(victims, key=lambda a: a.queued)  # first of equals: registration order


def steal_count(thief: AgentState, victim: AgentState, settings: StealSettings) -> int:
    """How many tasks the thief takes: the configured share, capped by relative speed."""
    share = thief.stats.speed / (thief.stats.speed + victim.stats.speed)
    share = min(settings.percentage, share)
    return max(1, math.floor(victim.queued * share))


def plan_steal(
    thief: AgentState,
    agents: Sequence[AgentState],
    queue_of: Callable[[str], QueueView],
    settings: StealSettings,
    rng: random.Random,
) -> StealPlan | None:
    """Decide one steal for an idle `thief`, or None when there is nothing worth taking."""
    victim = choose_victim(thief, agents, settings, rng)
    if victim is None:
        return None
    wanted = steal_count(thief, victim, settings)
    queue = queue_of(victim.id)
    total = len(queue)
    if total == 0:
        return None
    chosen: list[str] = []
    for level, quota in _quotas(queue, wanted, total):
        chosen.extend(t.id for t in _tail(queue.level_tasks(level), quota, thief, settings))
    if not chosen:
        # every task in the levels' shares is pinned elsewhere: take what may move, least
        # urgent level first, so an idle agent is not kept idle by a few pinned tails
        for level in reversed(Priority):
            if queue.level_len(level):
                chosen.extend(
                    t.id for t in _tail(queue.level_tasks(level), wanted, thief, settings)
                )
                if chosen:
                    break
    if not chosen:
        return None
    return StealPlan(victim=victim.id, thief=thief.id, task_ids=tuple(chosen))


def _quotas(queue: QueueView, wanted: int, total: int) -> list[tuple[Priority, int]]:
    """Split `wanted` over the levels in proportion to their lengths (largest remainder)."""
    sizes = [(level, queue.level_len(level)) for level in Priority]
    shares = [(level, wanted * size / total) for level, size in sizes if size]
    quotas = {level: math.floor(share) for level, share in shares}
    left = wanted - sum(quotas.values())
    by_remainder = sorted(shares, key=lambda ls: (-(ls[1] - math.floor(ls[1])), ls[0]))
    for level, _ in by_remainder[:left]:
        quotas[level] += 1
    return [(level, quotas[level]) for level, _ in shares if quotas[level]]


def _tail(tasks: list[Task], quota: int, thief: AgentState, settings: StealSettings) -> list[Task]:
    """Up to `quota` movable tasks from the end of `tasks`, returned in their original order."""
    picked: list[Task] = []
    for task in reversed(tasks):
        if len(picked) >= quota:
            break
        if task.moves < settings.max_moves and task.allows(thief.id, thief.spec.region):
            picked.append(task)
    picked.reverse()
    return picked


def plan_rescue(
    thief: AgentState,
    holders: Iterable[AgentState],
    queue_of: Callable[[str], QueueView],
    now: float,
    max_moves: int,
) -> StealPlan | None:
    """Late binding's stealing: an idle `thief` takes the task bound to a busy agent that it would
    finish soonest before that agent could, or None when no bound task would finish sooner here.

    Only holders whose running work overran its estimate qualify: a binding made with a right
    estimate can only have grown better since (its holder frees when expected, the thief later).

    Each holder's candidate is the task it would start last (the tail of its least urgent level);
    it would finish there after the holder's expected wait, here after `w / s_thief`.
    """
    best: StealPlan | None = None
    best_gain = 0.0
    here_speed = thief.stats.speed
    here_error = 1.0 - min(thief.stats.error_rate, MAX_ERROR)
    for holder in holders:
        if holder is thief or not holder.queued or not overran(holder, now):
            continue
        task = _last_to_start(queue_of(holder.id))
        if (
            task is None
            or task.moves >= max_moves
            or task.seq < thief.last_seq  # the thief started a newer task: keep its order
            or not task.allows(thief.id, thief.region)
        ):
            continue
        work = task.expected_work
        speed = holder.stats.speed
        capacity = holder.spec.capacity
        there = wait_time(holder, speed, now) + work * (1.0 - 1.0 / capacity) / speed
        there /= 1.0 - min(holder.stats.error_rate, MAX_ERROR)
        gain = there - work / here_speed / here_error
        if gain > best_gain:
            best, best_gain = StealPlan(holder.id, thief.id, (task.id,)), gain
    return best


def overran(agent: AgentState, now: float) -> bool:
    """Has the agent's running work taken longer than booked, at its learned speed?"""
    return work_left(agent, agent.stats.speed, now) < 0.0


def _last_to_start(queue: QueueView) -> Task | None:
    for level in reversed(Priority):
        if queue.level_len(level):
            tasks = queue.level_tasks(level)
            if tasks:
                return tasks[-1]
    return None
