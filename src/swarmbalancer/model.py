"""The data the balancer works on: tasks, agents and their live state.

These are plain slotted dataclasses, not pydantic models: they sit on the hot path of every
dispatch. Validation happens once, at the edge (`Task.create`, the config and the wire models).
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from swarmbalancer.errors import TaskRejected
from swarmbalancer.spec import AgentSpec as AgentSpec
from swarmbalancer.spec import check_number as _check_number
from swarmbalancer.spec import short as _short


class Priority(IntEnum):
    """Priority levels, most urgent first; the integer value is the level index."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3
    BACKGROUND = 4

    @classmethod
    def parse(cls, value: object, field_name: str = "priority") -> Priority:
        """Accept a Priority, its lower-case name or its index; anything else names the field."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, str):
            known = _BY_LABEL.get(value)
            if known is not None:
                return known
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4:
            return cls(value)
        names = ", ".join(p.name.lower() for p in cls)
        raise TaskRejected(f"{field_name}: {value!r} is not one of {names}")

    @property
    def label(self) -> str:
        return self.name.lower()


_BY_LABEL: dict[str, Priority] = {p.name.lower(): p for p in Priority}

#: The four levels that share dispatches by weight; BACKGROUND runs only when they are empty.
WEIGHTED_LEVELS: tuple[Priority, ...] = (
    Priority.CRITICAL,
    Priority.HIGH,
    Priority.NORMAL,
    Priority.LOW,
)


class TaskState(StrEnum):
    """Where a task is in its life."""

    PENDING = "pending"  # accepted, not yet placed in any agent queue
    QUEUED = "queued"
    RUNNING = "running"
    DELAYED = "delayed"  # waiting out a retry backoff
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # removed by the user before it finished


_seq = itertools.count()

#: The most retries a task may ask for (backoff doubles per retry; beyond this it overflows).
MAX_RETRIES = 1000


#: Task's fields, in the order its `__init__` takes them.
_TASK_FIELDS: tuple[str, ...] = (
    "id",
    "payload",
    "priority",
    "tenant",
    "deadline",
    "estimate",
    "affinity",
    "region",
    "idempotency_key",
    "max_retries",
    "period",
    "attempt",
    "expected_work",
    "seq",
    "level",
    "state",
    "agent_id",
    "moves",
    "submitted_at",
    "enqueued_at",
    "dispatched_at",
    "started_at",
    "finished_at",
    "error",
    "tried_agents",
    "parked_at",
    "shared_level",
)


class Task:
    """One unit of work and everything the balancer knows about it.

    `priority` is what the user asked for; `level` is the level it currently queues at, after
    aging (up) and feedback (down). `seq` is the submission order, the final tie-breaker everywhere.
    `affinity` is a hard constraint (regions or agent ids allowed to run it); `region` is a soft
    locality hint. `expected_work` is the work the router booked for it on its agent's backlog.
    `shared_level` is the level it joined the shared queue at (its class there), the level it
    queues at again when bound to an agent, whatever aging lifted it to meanwhile.
    """

    __slots__ = _TASK_FIELDS  # (pure Python; a compiled Task has its own layout)

    id: str
    payload: Any
    priority: Priority
    tenant: str | None
    deadline: float | None
    estimate: float | None
    affinity: frozenset[str] | None
    region: str | None
    idempotency_key: str | None
    max_retries: int
    period: float | None
    attempt: int
    expected_work: float
    seq: int
    level: Priority
    state: TaskState
    agent_id: str | None
    moves: int
    submitted_at: float
    enqueued_at: float
    dispatched_at: float | None
    started_at: float | None
    finished_at: float | None
    error: str | None
    tried_agents: tuple[str, ...]
    parked_at: float | None
    shared_level: Priority

    def __init__(
        self,
        id: str,
        payload: Any = None,
        priority: Priority = Priority.NORMAL,
        tenant: str | None = None,
        deadline: float | None = None,
        estimate: float | None = None,
        affinity: frozenset[str] | None = None,
        region: str | None = None,
        idempotency_key: str | None = None,
        max_retries: int = 2,
        period: float | None = None,
        attempt: int = 0,
        expected_work: float = 0.0,
        seq: int | None = None,
        level: Priority = Priority.NORMAL,
        state: TaskState = TaskState.PENDING,
        agent_id: str | None = None,
        moves: int = 0,
        submitted_at: float = 0.0,
        enqueued_at: float = 0.0,
        dispatched_at: float | None = None,
        started_at: float | None = None,
        finished_at: float | None = None,
        error: str | None = None,
        tried_agents: tuple[str, ...] = (),
        parked_at: float | None = None,
        shared_level: Priority = Priority.NORMAL,
    ) -> None:
        """Every field, positionally or by name, as a dataclass's `__init__` takes them; `seq`
        defaults to the next submission number. Written out rather than generated by
        `dataclasses`, whose `__init__` would stay Python in the compiled module."""
        self.id = id
        self.payload = payload
        self.priority = priority
        self.tenant = tenant
        self.deadline = deadline
        self.estimate = estimate
        self.affinity = affinity
        self.region = region
        self.idempotency_key = idempotency_key
        self.max_retries = max_retries
        self.period = period
        self.attempt = attempt
        self.expected_work = expected_work
        self.seq = next(_seq) if seq is None else seq
        self.level = level
        self.state = state
        self.agent_id = agent_id
        self.moves = moves
        self.submitted_at = submitted_at
        self.enqueued_at = enqueued_at
        self.dispatched_at = dispatched_at
        self.started_at = started_at
        self.finished_at = finished_at
        self.error = error
        self.tried_agents = tried_agents
        self.parked_at = parked_at
        self.shared_level = shared_level

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _TASK_FIELDS)
        return f"Task({fields})"

    @classmethod
    def create(
        cls,
        payload: Any = None,
        *,
        now: float,
        priority: object = Priority.NORMAL,
        tenant: object = None,
        deadline: object = None,
        within: object = None,
        estimate: object = None,
        affinity: object = None,
        region: object = None,
        idempotency_key: object = None,
        task_id: object = None,
        max_retries: object = 2,
        period: object = None,
    ) -> Task:
        """Build a validated task; `within` is a deadline relative to `now`. Errors name fields.

        The fields are typed `object`: they come from users, and each is checked here, so a
        wrong type is a TaskRejected naming it (never a TypeError of the compiled module).
        """
        prio = Priority.parse(priority)
        if deadline is not None and within is not None:
            raise TaskRejected("deadline: give either an absolute deadline or `within`, not both")
        due: float | None = None
        if within is not None:
            due = now + _check_number("within", within, positive=True)
            _check_number("deadline", due, positive=False)
        elif deadline is not None:
            due = _check_number("deadline", deadline, positive=False)
        work: float | None = None
        if estimate is not None:
            work = _check_number("estimate", estimate, positive=False)
            if work < 0:
                raise TaskRejected("estimate: must be >= 0")
        every: float | None = None
        if period is not None:
            every = _check_number("period", period, positive=True)
            if estimate is None:
                raise TaskRejected("period: a periodic task needs an estimate (its execution time)")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise TaskRejected(f"max_retries: {_short(max_retries)} is not a whole number >= 0")
        if max_retries > MAX_RETRIES:
            raise TaskRejected(f"max_retries: at most {MAX_RETRIES}, got {_short(max_retries)}")
        if tenant is not None and not isinstance(tenant, str):
            raise TaskRejected(f"tenant: {_short(tenant)} is not a string")
        if idempotency_key is not None and not isinstance(idempotency_key, str):
            raise TaskRejected(f"idempotency_key: {_short(idempotency_key)} is not a string")
        if region is not None and (not isinstance(region, str) or not region):
            raise TaskRejected(f"region: {_short(region)} is not a non-empty string")
        if task_id is not None and (not isinstance(task_id, str) or not task_id):
            raise TaskRejected(f"task_id: {_short(task_id)} is not a non-empty string")
        return cls(
            id=task_id or uuid.uuid4().hex,
            payload=payload,
            priority=prio,
            level=prio,
            tenant=tenant,
            deadline=due,
            estimate=work,
            affinity=None if affinity is None else _affinity(affinity),
            region=region,
            idempotency_key=idempotency_key,
            max_retries=max_retries,
            period=every,
            submitted_at=now,
            seq=next(_seq),
        )

    def allows(self, agent_id: str, region: str | None) -> bool:
        """True when the task's affinity admits this agent (by id or by region)."""
        aff = self.affinity
        return aff is None or agent_id in aff or (region is not None and region in aff)

    @property
    def finished(self) -> bool:
        return self.state in _FINISHED


_FINISHED = frozenset({TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED})


def _affinity(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items: frozenset[object] = frozenset([value])
    elif isinstance(value, list | tuple | set | frozenset):
        try:
            items = frozenset(value)
        except TypeError:
            items = frozenset()
    else:
        items = frozenset()
    if not items or not all(isinstance(v, str) and v for v in items):
        raise TaskRejected(
            f"affinity: {_short(value)} must be a region or agent id, or a list of them"
        )
    return items  # type: ignore[return-value]


@dataclass(slots=True)
class AgentStats:
    """Online estimates the adaptive router learns, exponentially weighted.

    `speed` is work units per second observed: the ratio of the weighted average work to the
    weighted average duration (`work_avg / time_avg`), so long tasks, whose timing is least
    disturbed by dispatch overhead, count most. `error_rate` is the weighted share of failed
    attempts; `samples` how many observations fed them. `hinted` says whether the starting
    `speed` was declared (a hint to trust) or is the neutral prior 1.0 (replaced by the first
    observation).
    """

    speed: float
    error_rate: float = 0.0
    work_avg: float | None = None
    time_avg: float | None = None
    samples: int = 0
    last_observed: float | None = None
    hinted: bool = False


@dataclass(slots=True, eq=False)
class AgentState:
    """An agent as the coordinator sees it: its spec plus live counters.

    `queued` and `in_flight` are counts: `queued` is what is bound to the agent and waits for a
    slot. `backlog` is the estimated work (units) of queued and running tasks; `run_work` is the
    part of it that runs, and `run_started` the sum of the running tasks' start times, so the
    work still left to run is about `run_work - speed * (in_flight * now - run_started)`.
    """

    spec: AgentSpec
    stats: AgentStats
    queued: int = 0
    in_flight: int = 0
    backlog: float = 0.0
    run_work: float = 0.0
    run_started: float = 0.0
    busy_s: float = 0.0
    completed: int = 0
    failed: int = 0
    joined_at: float = 0.0
    ramp_from: float | None = None  # slow start: when the ramp began, None when at full share
    last_seq: int = -1  # `seq` of the newest task it started: an older one would break its order
    draining: bool = False
    id: str = field(init=False)  # spec.id, copied: it is read on every routing decision

    def __post_init__(self) -> None:
        self.id = self.spec.id

    @property
    def capacity(self) -> int:
        return self.spec.capacity

    @property
    def region(self) -> str | None:
        return self.spec.region

    @property
    def free_slots(self) -> int:
        return self.spec.capacity - self.in_flight

    @property
    def load(self) -> float:
        """Queued plus in-flight tasks over capacity: the `least_connections` measure."""
        return (self.queued + self.in_flight) / self.spec.capacity


def plain_task(task_id: str, payload: Any, max_retries: int, now: float) -> Task:
    """`Task(id=task_id, payload=payload, max_retries=max_retries, submitted_at=now)`, made the
    cheaper way (keywords cost a plain submit more than the rest of building its task)."""
    task = Task(task_id, payload)
    task.max_retries = max_retries
    task.submitted_at = now
    return task
