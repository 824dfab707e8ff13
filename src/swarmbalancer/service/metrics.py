"""Prometheus metrics of a service, in its own registry (never the process-global one).

Counters and gauges are read from the balancer at scrape time (its report and its store), so
they can never drift from `GET /v1/report`; the latency histograms are observed as each task
ends. Label sets are bounded: `priority` by the five levels, `outcome` and `state` by their few
values, `model` by `MAX_MODELS` (metrics/usage.py), and `agent` and `tenant` by `LabelCap`: the
first `max_agents` agent ids seen and the first `max_tenant_labels` tenants submitted keep their
own label, later ones share `other` (a task without a tenant has `tenant=""`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from swarmbalancer.metrics.usage import OTHER
from swarmbalancer.model import TaskState
from swarmbalancer.policies.breaker import BreakerState
from swarmbalancer.runtime.balancer import Balancer
from swarmbalancer.runtime.handles import TaskHandle

#: Buckets (seconds) of the latency histograms: from sub-millisecond no-ops to LLM calls.
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

#: Report counters exported as Prometheus counters: (report key, metric name, help).
_COUNTERS = (
    ("accepted", "tasks_submitted", "Tasks accepted by the balancer."),
    ("completed", "tasks_completed", "Tasks that completed."),
    ("failed", "tasks_failed", "Tasks that failed after their last attempt."),
    ("cancelled", "tasks_cancelled", "Tasks cancelled before they finished."),
    ("retries", "retries", "Attempts retried after a failure."),
    ("steals", "steals", "Tasks stolen by idle agents."),
    ("migrations", "migrations", "Tasks moved by the rebalancer."),
)


class LabelCap:
    """Bounds one label's values: the first `limit` distinct values seen keep their own label,
    every later one is `other`; None (no tenant) is the empty label."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._kept: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if value is None:
            return ""
        if value in self._kept:
            return value
        if len(self._kept) < self.limit:
            self._kept.add(value)
            return value
        return OTHER


def _capped(rows: Iterable[tuple[str, float]], cap: LabelCap) -> dict[str, float]:
    """Sum values by their capped label (rows beyond the cap add up under `other`)."""
    sums: dict[str, float] = {}
    for name, value in rows:
        label = cap(name)
        sums[label] = sums.get(label, 0.0) + value
    return sums


class _BalancerCollector:
    """Reads the balancer's report and agents at each scrape."""

    def __init__(self, balancer: Balancer, agents: LabelCap, tenants: LabelCap) -> None:
        self._lb = balancer
        self._agents = agents
        self._tenants = tenants

    def collect(self) -> Iterable[Metric]:
        lb = self._lb
        report = lb.report()
        for key, name, text in _COUNTERS:
            counter = CounterMetricFamily(f"swarmbalancer_{name}", text)
            counter.add_metric([], float(report[key]))
            yield counter
        in_flight = GaugeMetricFamily(
            "swarmbalancer_agent_in_flight", "Tasks running at an agent.", labels=["agent"]
        )
        queued = GaugeMetricFamily(
            "swarmbalancer_agent_queued", "Tasks bound to an agent, waiting.", labels=["agent"]
        )
        for agent in lb.coordinator.store.agents():
            in_flight.add_metric([agent.id], agent.in_flight)
            queued.add_metric([agent.id], agent.queued)
        yield in_flight
        yield queued
        shared, bound = lb.coordinator.store.queued_counts()
        depth = GaugeMetricFamily(
            "swarmbalancer_queue_depth", "Tasks waiting for a slot.", labels=["queue"]
        )
        depth.add_metric(["shared"], shared)
        depth.add_metric(["agents"], bound)
        yield depth
        breaker = GaugeMetricFamily(
            "swarmbalancer_agent_breaker_state",
            "1 for an agent's current circuit breaker state, else 0.",
            labels=["agent", "state"],
        )
        for row in report["per_agent"]:
            for state in BreakerState:
                breaker.add_metric([row["id"], state.value], row["breaker_state"] == state.value)
        yield breaker
        yield from self._task_counts(report)
        yield from self._token_metrics(report["token_usage"])

    def _task_counts(self, report: dict[str, Any]) -> Iterable[Metric]:
        """Tasks completed by agent, level and tenant, and failed attempts by agent."""
        rows = report["per_agent"]
        for key, name, text in (
            ("completed", "agent_tasks_completed", "Tasks completed by an agent."),
            ("failed", "agent_attempts_failed", "Failed attempts at an agent."),
        ):
            family = CounterMetricFamily(f"swarmbalancer_{name}", text, labels=["agent"])
            for label, value in _capped(((r["id"], r[key]) for r in rows), self._agents).items():
                family.add_metric([label], value)
            yield family
        levels = CounterMetricFamily(
            "swarmbalancer_level_tasks_completed",
            "Tasks completed, by submitted priority.",
            labels=["priority"],
        )
        for level, row in report["per_priority"].items():
            levels.add_metric([level], row["completed"])
        yield levels
        tenants = CounterMetricFamily(
            "swarmbalancer_tenant_tasks_completed", "Tasks completed, by tenant.", labels=["tenant"]
        )
        per_tenant = (report["per_tenant"] or {}).items()
        for label, value in _capped(
            ((n, r["completed"]) for n, r in per_tenant), self._tenants
        ).items():
            tenants.add_metric([label], value)
        yield tenants

    def _token_metrics(self, usage: dict[str, Any] | None) -> Iterable[Metric]:
        """Token counters by agent, tenant and model (models beyond `MAX_MODELS` count as
        `other`, agents and tenants beyond their caps too), and cost by model."""
        families = (
            ("agent", "swarmbalancer_agent_tokens", "per_agent", self._agents),
            ("tenant", "swarmbalancer_tenant_tokens", "per_tenant", self._tenants),
            ("model", "swarmbalancer_model_tokens", "per_model", None),
        )
        cost = CounterMetricFamily(
            "swarmbalancer_model_cost", "Cost reported per model.", labels=["model"]
        )
        for label, name, key, cap in families:
            family = CounterMetricFamily(
                name, f"Tokens reported, by {label}.", labels=[label, "kind"]
            )
            if usage is not None:
                for kind in ("input", "output"):
                    rows = [(n, r[f"{kind}_tokens"]) for n, r in usage[key].items()]
                    sums = dict(rows) if cap is None else _capped(rows, cap)
                    for value_label, value in sums.items():
                        family.add_metric([value_label, kind], value)
            yield family
        if usage is not None:
            for name, row in usage["per_model"].items():
                if row["cost"] is not None:
                    cost.add_metric([name], row["cost"])
        yield cost


class ServiceMetrics:
    """The registry `/metrics` serves, and the histograms tasks feed as they end."""

    def __init__(self, balancer: Balancer, *, max_agents: int, max_tenants: int) -> None:
        self.registry = CollectorRegistry()
        self.agents = LabelCap(max_agents)
        self.tenants = LabelCap(max_tenants)
        self.registry.register(_BalancerCollector(balancer, self.agents, self.tenants))
        self._now = balancer.now
        self.sojourn = Histogram(
            "swarmbalancer_task_sojourn_seconds",
            "Time from submission to the end of a task's last attempt.",
            ["priority", "tenant", "outcome"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.queue = Histogram(
            "swarmbalancer_task_queue_seconds",
            "Time from submission to the start of a task's last attempt.",
            ["priority", "tenant"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.run = Histogram(
            "swarmbalancer_agent_run_seconds",
            "Time from the start to the end of a task's last attempt, by the agent that ran it.",
            ["agent", "outcome"],
            buckets=BUCKETS,
            registry=self.registry,
        )

    def task_accepted(self, handle: TaskHandle) -> None:
        """Give a new task's tenant its label now: tenants keep their own label in the order
        their first task was submitted, whatever order tasks finish in."""
        self.tenants(handle.task.tenant)

    def task_ended(self, handle: TaskHandle) -> None:
        """Observe a finished task's latencies (a cancelled one only ends, it is not timed)."""
        task = handle.task
        if handle.cancelled() or task.state is TaskState.CANCELLED:
            return
        priority = task.priority.name.lower()
        tenant = self.tenants(task.tenant)
        outcome = "completed" if handle.exception() is None else "failed"
        end = task.finished_at if task.finished_at is not None else self._now()
        self.sojourn.labels(priority, tenant, outcome).observe(max(0.0, end - task.submitted_at))
        if task.started_at is not None:
            started = task.started_at
            self.queue.labels(priority, tenant).observe(max(0.0, started - task.submitted_at))
            if task.agent_id is not None:
                agent = self.agents(task.agent_id)
                self.run.labels(agent, outcome).observe(max(0.0, end - started))

    def render(self) -> bytes:
        return generate_latest(self.registry)
