"""Turn a `Workload` into its task list, its membership events and its makespan lower bound.

Generation is deterministic: each aspect (work, arrival, priority, tenant, affinity, estimate)
draws from its own stream derived from the workload seed, so the same file and seed always give
the same list, and changing one aspect of the file leaves the others' draws unchanged.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Literal, NamedTuple, TypeVar

from swarmbalancer.metrics.bound import MakespanBound
from swarmbalancer.model import AgentSpec, Priority, Task
from swarmbalancer.workload.faults import NO_FAULT, FaultEffect, FaultPlan
from swarmbalancer.workload.schema import GeneratedTasks, TraceTasks, Workload, Zipf
from swarmbalancer.workload.seeding import derived_rng
from swarmbalancer.workload.trace import default_task_id

_T = TypeVar("_T")

__all__ = [
    "NO_FAULT",
    "FaultEffect",
    "FaultPlan",
    "MembershipEvent",
    "TaskRecord",
    "agent_specs",
    "generate_tasks",
    "iter_tasks",
    "lower_bound",
    "membership_events",
]


class TaskRecord(NamedTuple):
    """One task of a workload. `work` is seconds at speed 1; times are seconds from the run start.

    `deadline` is absolute (workload time); `estimate` is the work the submitter announces, equal
    to `work` unless the workload adds estimate noise. An immutable named tuple: cheap to build a
    million of.
    """

    id: str
    work: float
    arrival: float
    priority: Priority
    tenant: str | None
    deadline: float | None
    affinity: tuple[str, ...] | None
    estimate: float

    @property
    def payload(self) -> dict[str, float]:
        """The task payload the synthetic agents read: `{"work": work}`."""
        return {"work": self.work}

    def to_task(self, *, now: float, origin: float = 0.0, max_retries: int = 2) -> Task:
        """A `Task` submitted at clock time `now`, where workload time 0 is clock time `origin`.

        The record's fields were validated when the workload was read, so the task is built
        directly (what `Task.create` would build, without checking again).
        """
        return Task(
            id=self.id,
            payload={"work": self.work},
            priority=self.priority,
            level=self.priority,
            tenant=self.tenant,
            deadline=None if self.deadline is None else origin + self.deadline,
            estimate=self.estimate,
            affinity=None if self.affinity is None else frozenset(self.affinity),
            max_retries=max_retries,
            submitted_at=now,
        )


class MembershipEvent(NamedTuple):
    """An agent joins or leaves the swarm at workload time `time`."""

    time: float
    kind: Literal["join", "leave"]
    agent_id: str


def agent_specs(workload: Workload) -> list[AgentSpec]:
    """Every agent of the workload, joiners included (same as `Workload.agent_specs()`)."""
    return workload.agent_specs()


def membership_events(workload: Workload) -> list[MembershipEvent]:
    """Join and leave events in time order; at equal times joins come first, then file order.

    Agents without `join` are present from time 0 and get no join event.
    """
    keyed: list[tuple[float, int, int, MembershipEvent]] = []
    order = 0
    for group in workload.agents:
        for agent_id in group.ids():
            if group.join is not None:
                keyed.append((group.join, 0, order, MembershipEvent(group.join, "join", agent_id)))
            if group.leave is not None:
                keyed.append(
                    (group.leave, 1, order, MembershipEvent(group.leave, "leave", agent_id))
                )
            order += 1
    keyed.sort(key=lambda k: k[:3])
    return [event for *_, event in keyed]


def generate_tasks(workload: Workload) -> list[TaskRecord]:
    """The workload's tasks sorted by (arrival, index); ids are `t{index:06d}` unless traced."""
    source = workload.tasks
    if isinstance(source, GeneratedTasks) and source.arrival.ordered:
        return list(_generated(workload, source))
    records = (
        _from_trace(source) if isinstance(source, TraceTasks) else _generated(workload, source)
    )
    return _by_arrival(list(records))


def iter_tasks(workload: Workload) -> Iterator[TaskRecord]:
    """The same records as `generate_tasks`, in the same order, generated one at a time when the
    arrival process is ordered, so a long simulation never holds the whole list."""
    source = workload.tasks
    if isinstance(source, GeneratedTasks) and source.arrival.ordered:
        return _generated(workload, source)
    return iter(generate_tasks(workload))


def _by_arrival(records: list[TaskRecord]) -> list[TaskRecord]:
    order = sorted(range(len(records)), key=lambda i: (records[i].arrival, i))
    return [records[i] for i in order]


def _from_trace(source: TraceTasks) -> list[TaskRecord]:
    return [
        TaskRecord(
            id=row.id or default_task_id(i),
            work=row.work,
            arrival=row.arrival,
            priority=row.priority,
            tenant=row.tenant,
            deadline=row.deadline,
            affinity=row.affinity,
            estimate=row.work if row.estimate is None else row.estimate,
        )
        for i, row in enumerate(source.rows)
    ]


def _generated(workload: Workload, source: GeneratedTasks) -> Iterator[TaskRecord]:
    """Task `i` in index order; each aspect draws from its own stream, one value per task."""
    seed, n = workload.seed, source.count
    works = map(source.work.sample, repeat(derived_rng(seed, "work"), n))
    arrivals = source.arrival.iter_times(n, derived_rng(seed, "arrival"))
    levels, level_p = source.priority_table()
    priorities = _draw(levels, level_p, n, derived_rng(seed, "priority"))
    tenants = _tenants(workload, source, n)
    affinities = _affinities(source, n, derived_rng(seed, "affinity"))
    noise = _estimate_noise(source, n, derived_rng(seed, "estimate"))
    slack = source.deadline.slack if source.deadline is not None else None
    ids = map(default_task_id, range(n))
    for task_id, work, arrival, priority, tenant, affinity, factor in zip(
        ids, works, arrivals, priorities, tenants, affinities, noise, strict=True
    ):
        yield TaskRecord(
            task_id,
            work,
            arrival,
            priority,
            tenant,
            None if slack is None else arrival + work * slack,
            affinity,
            work if factor is None else work * factor,
        )


def _draw(
    items: Sequence[_T], weights: Sequence[float], n: int, rng: random.Random
) -> Iterator[_T]:
    """`n` categorical draws, one uniform each; a single item needs no draws at all."""
    if len(items) == 1:
        return repeat(items[0], n)
    cumulative: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    last = len(items) - 1
    picks = (bisect.bisect_right(cumulative, rng.random() * total) for _ in range(n))
    return (items[min(pick, last)] for pick in picks)


def _tenants(workload: Workload, source: GeneratedTasks, n: int) -> Iterator[str | None]:
    mix = source.tenant
    if mix is None:
        return repeat(None, n)
    if isinstance(mix, Zipf):
        ids = [t.id for t in workload.tenants]
        weights = mix.probabilities(len(ids))
    else:
        ids, weights = list(mix), list(mix.values())
    drawn: Iterator[str | None] = _draw(ids, weights, n, derived_rng(workload.seed, "tenant"))
    return drawn


def _affinities(
    source: GeneratedTasks, n: int, rng: random.Random
) -> Iterator[tuple[str, ...] | None]:
    """Each task is pinned to one target with its probability; the remainder runs anywhere."""
    if not source.affinity:
        return repeat(None, n)
    targets: list[tuple[str, ...] | None] = [(t,) for t in source.affinity]
    weights = list(source.affinity.values())
    rest = 1.0 - sum(weights)
    if rest > 0:
        targets.append(None)
        weights.append(rest)
    return _draw(targets, weights, n, rng)


def _estimate_noise(source: GeneratedTasks, n: int, rng: random.Random) -> Iterator[float | None]:
    """Per task, the factor exp(N(-sigma^2/2, sigma)) (mean 1) on the work, or None (exact)."""
    if source.estimate is None or source.estimate.error == 0:
        return repeat(None, n)
    sigma = source.estimate.error
    return (math.exp(rng.normalvariate(-sigma * sigma / 2.0, sigma)) for _ in range(n))


def lower_bound(records: Sequence[TaskRecord], workload: Workload) -> float:
    """A lower bound on the makespan: when the last task can finish at best, from workload time 0.

    With S = sum(speed * capacity) and v = max(speed) over every agent of the workload at its true
    speed, it is the largest over tasks i of `a_i + (work of tasks arriving at or after a_i) / S`
    and `a_i + w_i / v` (`MakespanBound`). For a batch at time 0 this is `max(total work / S,
    max work / v)`. It assumes every agent is present and healthy all the time, so joins, leaves
    and faults can only raise the true optimum above it.
    """
    if not records:
        return 0.0
    speeds = workload.agent_speeds()
    capacities = {spec.id: spec.capacity for spec in workload.agent_specs()}
    bound = MakespanBound()
    for record in sorted(records, key=lambda r: r.arrival):
        bound.add(record.arrival, record.work)
    throughput = sum(speeds[i] * capacities[i] for i in speeds)
    return bound.bound(throughput, max(speeds.values()))
