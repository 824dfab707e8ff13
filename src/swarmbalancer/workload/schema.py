"""The workload file format: pydantic models, and the loader that turns a file into a `Workload`.

One format (YAML or JSON, snake_case keys) feeds `run`, `simulate`, `demo` and the benchmarks.
Every problem surfaces as one `WorkloadError` line naming the file and the field path, e.g.
`x.yaml: faults[0].agent: no agent named 'worker-9'`. The full format is in docs/workloads.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from swarmbalancer.config import BalancerConfig, load_config
from swarmbalancer.errors import ConfigError, WorkloadError
from swarmbalancer.model import AgentSpec, Priority
from swarmbalancer.workload.arrivals import Arrival, BatchArrival, TraceArrival
from swarmbalancer.workload.distributions import WorkDist
from swarmbalancer.workload.limits import (
    MAX_AGENTS,
    MAX_CAPACITY,
    MAX_COST,
    MAX_FACTOR,
    MAX_SECONDS,
    MAX_SEED,
    MAX_SIGMA,
    MAX_SLOTS,
    MAX_SPEED,
    MAX_TASKS,
    MAX_WEIGHT,
    MIN_SEED,
    MIN_SPEED,
    MIN_WEIGHT,
)
from swarmbalancer.workload.messages import describe, format_path
from swarmbalancer.workload.reading import read_document
from swarmbalancer.workload.trace import (
    TraceRow,
    default_task_id,
    read_arrival_trace,
    read_task_trace,
)

#: Probabilities of a categorical mix must sum to 1 within this tolerance; they are then normalised.
SUM_TOLERANCE = 0.01

Probability = Annotated[float, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class AgentGroup(_Model):
    """`count` identical agents; ids are `id` when count is 1, else `id-0` .. `id-{count-1}`."""

    id: str = Field(min_length=1)
    count: int = Field(default=1, ge=1, le=MAX_AGENTS)
    capacity: int = Field(default=1, ge=1, le=MAX_CAPACITY)
    speed: float = Field(default=1.0, ge=MIN_SPEED, le=MAX_SPEED)
    speed_hint: float | None = Field(default=None, ge=MIN_SPEED, le=MAX_SPEED)
    weight: float | None = Field(default=None, ge=MIN_WEIGHT, le=MAX_WEIGHT)
    region: str | None = Field(default=None, min_length=1)
    cost: float = Field(default=0.0, ge=0, le=MAX_COST)
    tags: list[str] = Field(default_factory=list)
    join: float | None = Field(default=None, ge=0, le=MAX_SECONDS)
    leave: float | None = Field(default=None, gt=0, le=MAX_SECONDS)

    @field_validator("leave")
    @classmethod
    def _leave_after_join(cls, value: float | None, info: ValidationInfo) -> float | None:
        join = info.data.get("join") or 0.0
        if value is not None and value <= join:
            raise ValueError(f"must be > join ({join}), got {value}")
        return value

    def ids(self) -> list[str]:
        """The expanded agent ids of this group, in order."""
        return [self.id] if self.count == 1 else [f"{self.id}-{i}" for i in range(self.count)]

    def specs(self) -> list[AgentSpec]:
        """One `AgentSpec` per expanded id, what the balancer is told: the true `speed` stays with
        the synthetic agent; `speed_hint` is passed on, and `weight` defaults to it (else 1), so
        not even the weighted strategy learns the true speed from the workload."""
        return [
            AgentSpec(
                id=agent_id,
                capacity=self.capacity,
                weight=self.weight if self.weight is not None else (self.speed_hint or 1.0),
                speed_hint=self.speed_hint,
                region=self.region,
                cost=self.cost,
                tags=frozenset(self.tags),
            )
            for agent_id in self.ids()
        ]


class Tenant(_Model):
    """A tenant and its fair-share weight (CFS/WFQ serve tenants in proportion to weight)."""

    id: str = Field(min_length=1)
    weight: float = Field(default=1.0, ge=MIN_WEIGHT, le=MAX_WEIGHT)


class Zipf(_Model):
    """Tenant skew: the tenant ranked k (1-based, in `tenants` order) has probability ∝ 1 / k^s."""

    zipf: float = Field(ge=0)

    def probabilities(self, count: int) -> list[float]:
        """Normalised Zipf probabilities of ranks 1..count."""
        raw = [_zipf_weight(k, self.zipf) for k in range(1, count + 1)]
        total = sum(raw)
        return [p / total for p in raw]


def _zipf_weight(rank: int, s: float) -> float:
    """1 / rank^s, or 0 where rank^s overflows a float (the share is below 1e-308 anyway)."""
    try:
        return 1.0 / float(rank**s)
    except OverflowError:
        return 0.0


class Deadline(_Model):
    """Absolute deadline = arrival + work * slack (work in seconds at speed 1)."""

    slack: float = Field(ge=1, le=MAX_FACTOR)


class Estimate(_Model):
    """Estimate noise: estimate = work * exp(N(-error^2/2, error)), a mean-1 log-normal factor."""

    error: float = Field(ge=0, le=MAX_SIGMA)


def _tenant_kind(value: Any) -> str:
    is_zipf = isinstance(value, Zipf) or (isinstance(value, dict) and "zipf" in value)
    return "~zipf" if is_zipf else "~mapping"


TenantMix = Annotated[
    Annotated[dict[str, Probability], Tag("~mapping")] | Annotated[Zipf, Tag("~zipf")],
    Discriminator(_tenant_kind),
]


def _check_sum(probabilities: dict[str, float], *, at_most: bool = False) -> None:
    total = sum(probabilities.values())
    if not probabilities:
        raise ValueError("must name at least one entry")
    if at_most and total > 1.0 + SUM_TOLERANCE:
        raise ValueError(f"probabilities sum to {total:.6g}; they must sum to at most 1")
    if not at_most and abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(
            f"probabilities sum to {total:.6g}; they must sum to 1 (within {SUM_TOLERANCE})"
        )


class GeneratedTasks(_Model):
    """`count` tasks drawn from distributions; every draw comes from the workload seed."""

    count: int = Field(ge=1, le=MAX_TASKS)
    work: WorkDist
    arrival: Arrival = Field(default_factory=lambda: BatchArrival(process="batch"))
    priority: dict[str, Probability] = Field(default_factory=lambda: {"normal": 1.0})
    tenant: TenantMix | None = None
    deadline: Deadline | None = None
    affinity: dict[str, Probability] | None = None
    estimate: Estimate | None = None

    @field_validator("priority")
    @classmethod
    def _priority_levels(cls, value: dict[str, float]) -> dict[str, float]:
        names = [p.label for p in Priority]
        for level in value:
            if level not in names:
                raise ValueError(f"{level!r} is not a priority level ({', '.join(names)})")
        _check_sum(value)
        return value

    @field_validator("tenant")
    @classmethod
    def _tenant_sum(cls, value: dict[str, float] | Zipf | None) -> dict[str, float] | Zipf | None:
        if isinstance(value, dict):
            _check_sum(value)
        return value

    @field_validator("affinity")
    @classmethod
    def _affinity_sum(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None:
            _check_sum(value, at_most=True)
        return value

    def priority_table(self) -> tuple[list[Priority], list[float]]:
        """Levels (most urgent first) and their normalised probabilities."""
        levels = [p for p in Priority if p.label in self.priority]
        total = sum(self.priority.values())
        return levels, [self.priority[p.label] / total for p in levels]


class TraceTasks(_Model):
    """Tasks replayed from a JSONL file, path relative to the workload file."""

    file: str = Field(min_length=1)
    _rows: list[TraceRow] | None = PrivateAttr(default=None)

    def attach(self, rows: list[TraceRow]) -> None:
        """Store the rows read from `file` (called once by the loader)."""
        self._rows = rows

    @property
    def rows(self) -> list[TraceRow]:
        """The recorded tasks, in file order."""
        if self._rows is None:
            raise WorkloadError(
                "tasks.file: trace not read; build the workload with load_workload() "
                "or parse_workload()"
            )
        return self._rows


def _source_kind(value: Any) -> str:
    is_trace = isinstance(value, TraceTasks) or (isinstance(value, dict) and "file" in value)
    return "~file" if is_trace else "~generated"


TaskSource = Annotated[
    Annotated[TraceTasks, Tag("~file")] | Annotated[GeneratedTasks, Tag("~generated")],
    Discriminator(_source_kind),
]


class Fault(_Model):
    """An injected fault on one agent over `[from, until)`; `until` omitted means for ever."""

    agent: str = Field(min_length=1)
    start: float = Field(alias="from", ge=0, le=MAX_SECONDS)
    until: float | None = Field(default=None, le=MAX_SECONDS)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    slowdown: float = Field(default=1.0, ge=1, le=MAX_FACTOR)
    down: bool = False

    @field_validator("until")
    @classmethod
    def _until_after_from(cls, value: float | None, info: ValidationInfo) -> float | None:
        start = info.data.get("start")
        if value is not None and start is not None and value <= start:
            raise ValueError(f"must be > from ({start}), got {value}")
        return value

    @model_validator(mode="after")
    def _has_effect(self) -> Fault:
        if not {"error_rate", "slowdown", "down"} & self.model_fields_set:
            raise ValueError("give at least one of error_rate, slowdown or down")
        return self

    def active(self, t: float) -> bool:
        """True when `t` lies in `[from, until)`."""
        return self.start <= t and (self.until is None or t < self.until)


class Workload(_Model):
    """A complete workload: the swarm, the tasks, tenants, faults and balancer overrides."""

    name: str | None = None
    description: str | None = None
    seed: int = Field(default=0, ge=MIN_SEED, le=MAX_SEED)
    agents: list[AgentGroup] = Field(min_length=1)
    tasks: TaskSource
    tenants: list[Tenant] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    config: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _cross_check(self) -> Workload:
        _check_sizes(self.agents)
        agents = self._check_agents()
        tenants = self._check_tenants()
        regions = {g.region for g in self.agents if g.region is not None}
        for i, fault in enumerate(self.faults):
            if fault.agent not in agents:
                raise ValueError(
                    f"{format_path(['faults', i, 'agent'])}: no agent named {fault.agent!r}"
                    + _group_hint(fault.agent, self.agents)
                )
        if isinstance(self.tasks, GeneratedTasks):
            mix = self.tasks.tenant
            if isinstance(mix, Zipf) and not tenants:
                raise ValueError("tasks.tenant.zipf: needs a `tenants` list to rank")
            if isinstance(mix, dict) and tenants:
                for tenant in mix:
                    if tenant not in tenants:
                        raise ValueError(f"tasks.tenant.{tenant}: not declared in `tenants`")
            for target in self.tasks.affinity or {}:
                if target not in agents and target not in regions:
                    raise ValueError(f"tasks.affinity.{target}: no agent or region of that name")
        if self.config is not None:
            try:
                load_config(self.config)
            except ConfigError as exc:
                message = str(exc).replace("Input should be", "must be")
                raise ValueError(f"config.{message}") from None
        return self

    def _check_agents(self) -> dict[str, int]:
        owner: dict[str, int] = {}
        for i, group in enumerate(self.agents):
            for agent_id in group.ids():
                if agent_id in owner:
                    raise ValueError(
                        f"agents[{i}].id: agent id {agent_id!r} is already used by "
                        f"agents[{owner[agent_id]}]"
                    )
                owner[agent_id] = i
        return owner

    def _check_tenants(self) -> set[str]:
        seen: set[str] = set()
        for i, tenant in enumerate(self.tenants):
            if tenant.id in seen:
                raise ValueError(f"tenants[{i}].id: tenant {tenant.id!r} is declared twice")
            seen.add(tenant.id)
        return seen

    def agent_ids(self) -> list[str]:
        """Every expanded agent id, in declaration order."""
        return [agent_id for group in self.agents for agent_id in group.ids()]

    def agent_specs(self) -> list[AgentSpec]:
        """One `AgentSpec` per expanded agent, including agents that join later: what the balancer
        is told (no true speed; see `agent_speeds`)."""
        return [spec for group in self.agents for spec in group.specs()]

    def agent_speeds(self) -> dict[str, float]:
        """The true speed of every expanded agent (synthetic agents and the simulator run at it)."""
        return {agent_id: group.speed for group in self.agents for agent_id in group.ids()}

    def initial_agent_specs(self) -> list[AgentSpec]:
        """The agents present at time 0: those without a `join` time."""
        return [spec for group in self.agents if group.join is None for spec in group.specs()]

    def tenant_weights(self) -> dict[str, float]:
        """Declared tenant weights, by tenant id."""
        return {t.id: t.weight for t in self.tenants}

    def balancer_config(self) -> BalancerConfig:
        """The balancer configuration of this workload.

        Starts from the defaults, takes `seed` from the workload and `tenantWeights` from
        `tenants`, then applies the `config` overrides, which win over both.
        """
        base: dict[str, Any] = {"seed": self.seed}
        if self.tenants:
            base["tenantWeights"] = self.tenant_weights()
        overrides = {to_camel(k) if "_" in k else k: v for k, v in (self.config or {}).items()}
        return load_config({**base, **overrides})


def _check_sizes(groups: list[AgentGroup]) -> None:
    """Agent and slot totals within their limits, checked before any id is expanded."""
    agents = sum(g.count for g in groups)
    if agents > MAX_AGENTS:
        raise ValueError(f"agents: {agents:,} agents in all; at most {MAX_AGENTS:,} are allowed")
    slots = sum(g.count * g.capacity for g in groups)
    if slots > MAX_SLOTS:
        raise ValueError(
            f"agents: {slots:,} slots in all (count x capacity); at most {MAX_SLOTS:,} are allowed"
        )


def _group_hint(name: str, groups: list[AgentGroup]) -> str:
    for group in groups:
        if group.id == name and group.count > 1:
            return f" (group {name!r} has ids {name}-0 .. {name}-{group.count - 1})"
    return ""


def load_workload(path: str | Path) -> Workload:
    """Read a workload from a .yaml, .yml or .json file; any problem raises `WorkloadError`."""
    path = Path(path)
    return parse_workload(read_document(path), path.parent, source=path.name)


def parse_workload(data: dict[str, Any], base_dir: Path, *, source: str = "workload") -> Workload:
    """Validate already-parsed data; trace paths are relative to `base_dir`.

    `source` names the data in error messages (the file name when called by `load_workload`).
    """
    raw: object = data
    if not isinstance(raw, dict):
        raise WorkloadError(f"{source}: expected a mapping at the top level, got {_kind(raw)}")
    try:
        workload = Workload.model_validate(raw)
    except ValidationError as exc:
        raise WorkloadError(f"{source}: {describe(exc, raw)}") from None
    _read_traces(workload, Path(base_dir), source)
    return workload


def _read_traces(workload: Workload, base_dir: Path, source: str) -> None:
    tasks = workload.tasks
    if isinstance(tasks, TraceTasks):
        try:
            path = (base_dir / tasks.file).resolve()
            rows = read_task_trace(path)
            _check_rows(rows, workload, path.name)
        except ValueError as exc:
            raise WorkloadError(f"{source}: tasks.file: {exc}") from None
        tasks.attach([row for _, row in rows])
    elif isinstance(tasks.arrival, TraceArrival):
        try:
            times = read_arrival_trace((base_dir / tasks.arrival.file).resolve())
        except ValueError as exc:
            raise WorkloadError(f"{source}: tasks.arrival.file: {exc}") from None
        if len(times) < tasks.count:
            raise WorkloadError(
                f"{source}: tasks.arrival.file: {tasks.arrival.file} has {len(times)} arrivals, "
                f"tasks.count asks for {tasks.count}"
            )
        tasks.arrival.attach(times)


def _check_rows(rows: list[tuple[int, TraceRow]], workload: Workload, name: str) -> None:
    agents = set(workload.agent_ids())
    regions = {g.region for g in workload.agents if g.region is not None}
    tenants = {t.id for t in workload.tenants}
    seen: dict[str, int] = {}
    for i, (lineno, row) in enumerate(rows):
        where = f"{name} line {lineno}"
        task_id = row.id or default_task_id(i)
        if task_id in seen:
            raise ValueError(f"{where}: id: {task_id!r} is used twice (also line {seen[task_id]})")
        seen[task_id] = lineno
        if tenants and row.tenant is not None and row.tenant not in tenants:
            raise ValueError(f"{where}: tenant: {row.tenant!r} is not declared in `tenants`")
        for target in row.affinity or ():
            if target not in agents and target not in regions:
                raise ValueError(f"{where}: affinity: no agent or region named {target!r}")


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__
