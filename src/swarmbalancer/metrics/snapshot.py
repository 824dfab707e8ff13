"""A snapshot of a live swarm: the report plus what only the coordinator knows now (learned
speeds, error rates, breakers, queues) and the runtime's timings (decision time, store flushes),
the input of `diagnosis`, of `agent-metrics` and of the service's dashboard."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from swarmbalancer.coordinator import Coordinator
from swarmbalancer.metrics.timing import RollingTimer, TimerFigures


@dataclass(frozen=True, slots=True)
class AgentFigures:
    """One registered agent as the coordinator sees it now."""

    id: str
    capacity: int
    speed: float  # learned work units per second
    speed_hint: float | None
    run_speed: float | None  # work per second over the run's completed attempts
    samples: int  # outcomes the learned figures rest on
    error_rate: float  # learned share of failed attempts (exponentially weighted)
    in_flight: int
    queued: int
    completed: int  # over the run, every registration
    failed: int  # failed attempts over the run
    utilization: float | None
    breaker: str  # closed, open, half_open
    region: str | None
    tags: list[str]
    draining: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The report and the live state at `now` (seconds on the coordinator's clock)."""

    report: dict[str, Any]
    agents: list[AgentFigures]
    elapsed_s: float | None  # since the first submission
    shared_queued: int
    agent_queued: int
    aging_interval: float
    decision: TimerFigures | None = None  # the coordinator's dispatches and ticks, live only
    flush: TimerFigures | None = None  # a durable store's flushes that wrote rows


def take_snapshot(
    coordinator: Coordinator, now: float, decisions: RollingTimer | None = None
) -> Snapshot:
    """Read the coordinator's state at `now` (moves a breaker whose timeout passed to
    half-open, as routing would), with the runtime's `decisions` timer when it has one
    (`Balancer.decision_timing`) and the store's flush timer when it keeps one."""
    report = coordinator.report()
    rows = {row["id"]: row for row in report["per_agent"]}
    agents = []
    for state in coordinator.store.agents():
        row = rows.get(state.id, {})
        breaker = coordinator.breakers.get(state.id)
        agents.append(
            AgentFigures(
                id=state.id,
                capacity=state.capacity,
                speed=state.stats.speed,
                speed_hint=state.spec.speed_hint,
                run_speed=coordinator.recorder.run_speed(state.id),
                samples=state.stats.samples,
                error_rate=state.stats.error_rate,
                in_flight=state.in_flight,
                queued=state.queued,
                completed=row.get("completed", state.completed),
                failed=row.get("failed", state.failed),
                utilization=row.get("utilization"),
                breaker="closed" if breaker is None else breaker.state(now).value,
                region=state.region,
                tags=sorted(state.spec.tags),
                draining=state.draining,
            )
        )
    first = coordinator.recorder.first_submit
    shared, bound = coordinator.store.queued_counts()
    return Snapshot(
        report=report,
        agents=agents,
        elapsed_s=None if first is None else max(0.0, now - first),
        shared_queued=shared,
        agent_queued=bound,
        aging_interval=coordinator.config.aging_interval,
        decision=None if decisions is None else decisions.figures(),
        flush=flush_figures(coordinator),
    )


def flush_figures(coordinator: Coordinator) -> TimerFigures | None:
    """The store's flush timings, when it keeps them (`JournalStore.flush_timing`, so SQLite and
    Redis; any store may offer a `RollingTimer` under that name); None for the memory store."""
    timer = getattr(coordinator.store, "flush_timing", None)
    return timer.figures() if isinstance(timer, RollingTimer) else None
