"""Adaptive rebalancing: every `check_interval`, move queued tasks from overloaded agents to
underloaded ones, gradually and without oscillation.

An agent's load is its expected drain time, booked backlog over (learned speed x capacity).
With mean load `m`, an agent is overloaded above `m * (1 + threshold)` and underloaded below
`m * (1 - threshold)`. Each step moves one task from the most overloaded to the most underloaded
agent, and only if the move strictly lowers the larger of the two loads; loads are recomputed
after every step. At most `max_migrations` moves a cycle; an agent that gave or took a task is
left alone for `cooldown_period`; a task moves at most `max_moves` times. Together these rule out
two agents trading the same tasks back and forth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from swarmbalancer.model import AgentState, Priority, Task
from swarmbalancer.policies.views import QueueView


@dataclass(frozen=True, slots=True)
class RebalanceSettings:
    """The knobs of rebalancing, as configured."""

    check_interval: float = 5.0
    threshold: float = 0.3
    cooldown: float = 30.0
    max_migrations: int = 5
    max_moves: int = 2


@dataclass(frozen=True, slots=True)
class Migration:
    """Move one queued task from `source` to `target`."""

    task_id: str
    source: str
    target: str


def drain_time(agent: AgentState) -> float:
    """Expected seconds for the agent to finish what it holds."""
    return agent.backlog / (agent.stats.speed * agent.spec.capacity)


class Rebalancer:
    """Plans migrations on a fixed schedule; its only state is the schedule and the cooldowns."""

    def __init__(self, settings: RebalanceSettings) -> None:
        self.settings = settings
        self.next_check: float = settings.check_interval
        self._cool_until: dict[str, float] = {}

    def due(self, now: float) -> bool:
        return now >= self.next_check

    def plan(
        self, agents: Sequence[AgentState], queue_of: Callable[[str], QueueView], now: float
    ) -> list[Migration]:
        """Migrations for this cycle (possibly none); advances the schedule."""
        s = self.settings
        self.next_check = now + s.check_interval
        if len(agents) < 2 or s.max_migrations == 0:
            return []
        loads = {a.id: drain_time(a) for a in agents}
        work = {a.id: a.backlog for a in agents}
        moved: set[str] = set()
        plan: list[Migration] = []
        while len(plan) < s.max_migrations:
            step = self._step(agents, loads, queue_of, moved, now)
            if step is None:
                break
            migration, task, source, target = step
            w = task.expected_work
            work[source.id] -= w
            work[target.id] += w
            loads[source.id] = work[source.id] / (source.stats.speed * source.spec.capacity)
            loads[target.id] = work[target.id] / (target.stats.speed * target.spec.capacity)
            moved.add(task.id)
            plan.append(migration)
        for m in plan:
            self._cool_until[m.source] = now + s.cooldown
            self._cool_until[m.target] = now + s.cooldown
        return plan

    def copy(self) -> Rebalancer:
        """An independent twin: planning on it (a dry run) leaves this one's schedule and
        cooldowns as they are."""
        twin = Rebalancer(self.settings)
        twin.next_check = self.next_check
        twin._cool_until = dict(self._cool_until)
        return twin

    def forget(self, agent_id: str) -> None:
        self._cool_until.pop(agent_id, None)

    def _cool(self, agent: AgentState, now: float) -> bool:
        return self._cool_until.get(agent.id, -1.0) > now

    def _step(
        self,
        agents: Sequence[AgentState],
        loads: dict[str, float],
        queue_of: Callable[[str], QueueView],
        moved: set[str],
        now: float,
    ) -> tuple[Migration, Task, AgentState, AgentState] | None:
        mean = sum(loads.values()) / len(loads)
        if mean <= 0:
            return None
        hi, lo = mean * (1 + self.settings.threshold), mean * (1 - self.settings.threshold)
        ready = [a for a in agents if not self._cool(a, now)]
        sources = sorted(
            (a for a in ready if loads[a.id] > hi and a.queued > 0), key=lambda a: -loads[a.id]
        )
        targets = sorted((a for a in ready if loads[a.id] < lo), key=lambda a: loads[a.id])
        for source in sources:
            for target in targets:
                task = self._movable(source, target, queue_of, moved)
                if task is None:
                    continue
                after = loads[target.id] + task.expected_work / (
                    target.stats.speed * target.spec.capacity
                )
                if after < loads[source.id]:
                    return Migration(task.id, source.id, target.id), task, source, target
        return None

    def _movable(
        self,
        source: AgentState,
        target: AgentState,
        queue_of: Callable[[str], QueueView],
        moved: set[str],
    ) -> Task | None:
        """The task the source would run last that the target may take."""
        queue = queue_of(source.id)
        for level in reversed(Priority):
            if queue.level_len(level) == 0:
                continue
            for task in reversed(queue.level_tasks(level)):
                if (
                    task.id not in moved
                    and task.moves < self.settings.max_moves
                    and task.allows(target.id, target.spec.region)
                ):
                    return task
        return None
