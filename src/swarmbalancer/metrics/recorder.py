"""Collects what happens to tasks and agents and turns it into the report.

Every figure has an exact definition (docs/metrics.md); a figure with no data is None, never a
placeholder. Latency series use `LatencySummary`, exact up to a bound and a sketch beyond it, so a
long simulation keeps memory bounded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from swarmbalancer.metrics.bound import MakespanBound
from swarmbalancer.metrics.stats import LatencySummary, jain_index, variance
from swarmbalancer.metrics.usage import Usage, UsageTally
from swarmbalancer.model import WEIGHTED_LEVELS, AgentState, Priority, Task


@dataclass(slots=True)
class _AgentRecord:
    """One agent id over the whole run: counts add up across its incarnations (leave, rejoin)."""

    state: AgentState  # the latest incarnation
    spans: list[tuple[float, float | None, int]]  # (joined, left or None, capacity) per incarnation
    completed: int = 0
    failed_attempts: int = 0
    busy_s: float = 0.0
    ok_work: float = 0.0  # booked work of completed attempts
    ok_busy_s: float = 0.0  # their summed durations

    @property
    def run_speed(self) -> float | None:
        """Work per second over the whole run's completed attempts (a baseline the learned,
        recent speed is compared with)."""
        return self.ok_work / self.ok_busy_s if self.ok_busy_s > 0 and self.ok_work > 0 else None

    @property
    def capacity(self) -> int:
        """The largest capacity it ever had (what a lower bound may assume)."""
        return max(span[2] for span in self.spans)


@dataclass(slots=True)
class _LevelRecord:
    queue_latency: LatencySummary
    completed: int = 0
    saturated_dispatches: int = 0


@dataclass(slots=True)
class _TenantRecord:
    queue_latency: LatencySummary
    completed: int = 0
    open: int = 0  # accepted, not finished
    service_s: float = 0.0
    backlogged_service_s: float = 0.0  # attempts finished while every tenant had open tasks


class Recorder:
    """Accumulates counts, times and latency series while the balancer runs."""

    def __init__(
        self, tenant_weights: dict[str, float] | None = None, *, latency_samples: int = 200_000
    ) -> None:
        self.tenant_weights = dict(tenant_weights or {})
        self._samples = latency_samples  # exact values a latency series keeps before its sketch
        self.accepted = 0
        self.completed = 0
        self.failed = 0
        self.cancelled = 0
        self.late_results = 0  # plain-handler attempts that returned after taskTimeout
        self.retries = 0
        self.steals = 0
        self.migrations = 0
        self.deadline_misses = 0
        self.first_submit: float | None = None
        self.last_finish: float | None = None
        self.queue_latency = LatencySummary(latency_samples)
        self.sojourn = LatencySummary(latency_samples)
        self._agents: dict[str, _AgentRecord] = {}
        self._levels = {p: _LevelRecord(LatencySummary(latency_samples)) for p in Priority}
        self._tenants: dict[str, _TenantRecord] = {}
        self._backlogged_tenants = 0  # tenants with open tasks
        self._estimated = True
        self._bound = MakespanBound()
        self._reference_speeds: dict[str, float] = {}
        self.usage = UsageTally()

    def set_reference_speeds(self, speeds: Mapping[str, float]) -> None:
        """The true speed of each agent, for the lower bound, from whoever knows them (a workload's
        synthetic agents, the simulator); agents not named here fall back to their `speed_hint`."""
        for agent_id, speed in speeds.items():
            if not (speed > 0 and math.isfinite(speed)):
                raise ValueError(f"reference speed of {agent_id!r}: must be > 0, got {speed!r}")
        self._reference_speeds = dict(speeds)

    def _speed_of(self, agent: AgentState) -> float | None:
        return self._reference_speeds.get(agent.id, agent.spec.speed_hint)

    # -- events -------------------------------------------------------------------------------
    def agent_joined(self, agent: AgentState, now: float) -> None:
        record = self._agents.get(agent.id)
        span = (now, None, agent.spec.capacity)
        if record is None:
            self._agents[agent.id] = _AgentRecord(agent, [span])
            return
        record.state = agent
        joined, left, capacity = record.spans[-1]
        if left is None:  # rejoined without leaving: its presence ends where the new one starts
            record.spans[-1] = (joined, now, capacity)
        record.spans.append(span)

    def agent_left(self, agent_id: str, now: float) -> None:
        record = self._agents[agent_id]
        joined, left, capacity = record.spans[-1]
        if left is None:
            record.spans[-1] = (joined, now, capacity)

    def task_accepted(self, task: Task, now: float) -> None:
        self.accepted += 1
        if self.first_submit is None:
            self.first_submit = now
        if task.estimate is None:
            self._estimated = False
        elif self._estimated:
            self._bound.add(now - self.first_submit, task.estimate)
        if task.tenant is not None:
            tenant = self._tenant(task.tenant)
            tenant.open += 1
            if tenant.open == 1:
                self._backlogged_tenants += 1

    def task_started(self, task: Task, now: float, saturated: bool) -> None:
        if task.attempt == 1:
            wait = now - task.submitted_at
            self.queue_latency.add(wait)
            self._levels[task.priority].queue_latency.add(wait)
            if task.tenant is not None:
                self._tenant(task.tenant).queue_latency.add(wait)
        if saturated:
            self._levels[task.level].saturated_dispatches += 1

    def attempt_finished(self, task: Task, agent_id: str, duration: float, ok: bool) -> None:
        record = self._agents[agent_id]
        record.busy_s += duration
        if ok:
            record.completed += 1
            record.ok_work += task.expected_work
            record.ok_busy_s += duration
        else:
            record.failed_attempts += 1
        if task.tenant is not None:
            tenant = self._tenant(task.tenant)
            tenant.service_s += duration
            if self._backlogged_tenants == len(self._tenants):
                tenant.backlogged_service_s += duration

    def task_completed(self, task: Task, agent_id: str, duration: float, now: float) -> None:
        """An attempt succeeded and completed its task: `attempt_finished(..., ok=True)` then
        `task_finished(..., ok=True)`, in one call for the common path."""
        record = self._agents[agent_id]
        record.busy_s += duration
        record.completed += 1
        record.ok_work += task.expected_work
        record.ok_busy_s += duration
        self.completed += 1
        self._levels[task.priority].completed += 1
        if task.tenant is not None:
            tenant = self._tenant(task.tenant)
            tenant.service_s += duration
            if self._backlogged_tenants == len(self._tenants):
                tenant.backlogged_service_s += duration
            tenant.completed += 1
            tenant.open -= 1
            if tenant.open == 0:
                self._backlogged_tenants -= 1
        if task.deadline is not None and now > task.deadline:
            self.deadline_misses += 1
        self.sojourn.add(now - task.submitted_at)
        if self.last_finish is None or now > self.last_finish:
            self.last_finish = now

    def attempt_cancelled(self, agent_id: str, duration: float) -> None:
        """A running attempt was cancelled: its slot was busy, but it neither completed nor
        failed."""
        self._agents[agent_id].busy_s += duration

    def task_cancelled(self, task: Task, now: float) -> None:
        self.cancelled += 1

    def task_finished(self, task: Task, now: float, ok: bool) -> None:
        if ok:
            self.completed += 1
            self._levels[task.priority].completed += 1
        else:
            self.failed += 1
        if task.tenant is not None:
            tenant = self._tenant(task.tenant)
            if ok:
                tenant.completed += 1
            tenant.open -= 1
            if tenant.open == 0:
                self._backlogged_tenants -= 1
        if task.deadline is not None and (not ok or now > task.deadline):
            self.deadline_misses += 1
        self.sojourn.add(now - task.submitted_at)
        if self.last_finish is None or now > self.last_finish:
            self.last_finish = now

    def run_speed(self, agent_id: str) -> float | None:
        record = self._agents.get(agent_id)
        return None if record is None else record.run_speed

    def usage_reported(self, agent_id: str, tenant: str | None, usage: Usage) -> None:
        """Token usage a handler or HTTP agent reported for an attempt (`token_usage`)."""
        self.usage.add(agent_id, tenant, usage)

    def _tenant(self, tenant: str) -> _TenantRecord:
        record = self._tenants.get(tenant)
        if record is None:
            record = self._tenants[tenant] = _TenantRecord(LatencySummary(self._samples))
        return record

    # -- report -------------------------------------------------------------------------------
    def lower_bound(self) -> float | None:
        """The arrival-aware bound of `MakespanBound` over every agent ever present, from the first
        submission; None unless every task carried an estimate and every agent has a speed."""
        if not self._estimated or self.accepted == 0 or not self._agents:
            return None
        agents = [(self._speed_of(r.state), r.capacity) for r in self._agents.values()]
        speeds = [(s, c) for s, c in agents if s is not None]
        if len(speeds) < len(agents):
            return None
        throughput = sum(s * c for s, c in speeds)
        return self._bound.bound(throughput, max(s for s, _ in speeds))

    def report(self, open_tasks: int, breaker_states: dict[str, str]) -> dict[str, Any]:
        """The report as a strict-JSON dict (keys documented in docs/metrics.md)."""
        report: dict[str, Any] = strict_json(self._report(open_tasks, breaker_states))
        return report

    def _report(self, open_tasks: int, breaker_states: dict[str, str]) -> dict[str, Any]:
        start, end = self.first_submit, self.last_finish
        makespan = None if start is None or end is None else end - start
        per_agent, utils = self._per_agent(start, end, breaker_states)
        busy = sum(r.busy_s for r in self._agents.values())
        slot_time = sum(self._slot_time(r, start, end) for r in self._agents.values())
        done = self.completed + self.failed + self.cancelled
        moved = self.steals + self.migrations
        return {
            "completed": self.completed,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "late_results": self.late_results,
            "lost": self.accepted - done - open_tasks,
            "open": open_tasks,
            "accepted": self.accepted,
            "makespan_s": makespan,
            "lower_bound_s": self.lower_bound(),
            "throughput_per_s": (self.completed / makespan) if makespan else None,
            "queue_latency_ms": _ms(self.queue_latency.summary()),
            "sojourn_ms": _ms(self.sojourn.summary()),
            "utilization": (busy / slot_time) if slot_time > 0 else None,
            "load_variance": variance(utils),
            "jain_fairness": jain_index(utils),
            "migration_rate": (moved / self.accepted) if self.accepted else None,
            "steals": self.steals,
            "migrations": self.migrations,
            "retries": self.retries,
            "deadline_misses": self.deadline_misses,
            "per_agent": per_agent,
            "per_priority": self._per_priority(),
            "per_tenant": self._per_tenant(),
            "tenant_fairness": self._tenant_fairness(),
            "token_usage": self.usage.report(),
        }

    @staticmethod
    def _slot_time(record: _AgentRecord, start: float | None, end: float | None) -> float:
        """Σ over its incarnations of capacity x the part of [start, end] it was registered."""
        if start is None or end is None:
            return 0.0
        total = 0.0
        for joined, left, capacity in record.spans:
            hi = end if left is None else min(end, left)
            total += max(0.0, hi - max(start, joined)) * capacity
        return total

    def _per_agent(
        self,
        start: float | None,
        end: float | None,
        breaker_states: dict[str, str],
    ) -> tuple[list[dict[str, Any]], list[float]]:
        rows: list[dict[str, Any]] = []
        utils: list[float] = []
        for agent_id, r in self._agents.items():
            slot_time = self._slot_time(r, start, end)
            util = r.busy_s / slot_time if slot_time > 0 else None
            if util is not None:
                utils.append(util)
            rows.append(
                {
                    "id": agent_id,
                    "completed": r.completed,
                    "failed": r.failed_attempts,
                    "busy_s": r.busy_s,
                    "utilization": util,
                    "breaker_state": breaker_states.get(agent_id, "removed"),
                }
            )
        return rows, utils

    def _per_priority(self) -> dict[str, dict[str, Any]]:
        saturated = sum(self._levels[p].saturated_dispatches for p in WEIGHTED_LEVELS)
        out: dict[str, dict[str, Any]] = {}
        for level, r in self._levels.items():
            p99 = r.queue_latency.summary()["p99"]
            out[level.label] = {
                "completed": r.completed,
                "share": (r.completed / self.completed) if self.completed else None,
                "saturated_share": (r.saturated_dispatches / saturated)
                if saturated and level in WEIGHTED_LEVELS
                else None,
                "queue_latency_ms": {"p99": None if p99 is None else p99 * 1000.0},
            }
        return out

    def _per_tenant(self) -> dict[str, dict[str, Any]] | None:
        if not self._tenants:
            return None
        records = self._tenants.values()
        service = sum(r.service_s for r in records)
        backlogged = sum(r.backlogged_service_s for r in records)
        weights = sum(self.tenant_weights.get(name, 1.0) for name in self._tenants)
        out: dict[str, dict[str, Any]] = {}
        for name, r in sorted(self._tenants.items()):
            latency = r.queue_latency.summary()
            weight = self.tenant_weights.get(name, 1.0)
            out[name] = {
                "completed": r.completed,
                "service_s": r.service_s,
                "weight": weight,
                "fair_share": weight / weights,
                "share": (r.service_s / service) if service > 0 else None,
                "backlogged_share": (r.backlogged_service_s / backlogged)
                if backlogged > 0
                else None,
                "queue_latency_ms": _ms({"p50": latency["p50"], "p99": latency["p99"]}),
            }
        return out

    def _tenant_fairness(self) -> float | None:
        if not self._tenants:
            return None
        return jain_index(
            [r.service_s / self.tenant_weights.get(n, 1.0) for n, r in self._tenants.items()]
        )


def strict_json(value: Any) -> Any:
    """`value` with every infinite or NaN float replaced by None, so it dumps as strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def _ms(summary: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else v * 1000.0 for k, v in summary.items()}
