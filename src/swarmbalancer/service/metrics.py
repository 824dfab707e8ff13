"""Prometheus metrics of a service, in its own registry (never the process-global one).

Counters and gauges are read from the balancer at scrape time (its report and its store), so
they can never drift from `GET /v1/report`; the latency histograms are observed as each task
ends. Label sets are bounded: `agent` by the service's `max_agents`, `priority` by the five
levels, `outcome` and `state` by their few values, `model` by `MAX_MODELS` (metrics/usage.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

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


class _BalancerCollector:
    """Reads the balancer's report and agents at each scrape."""

    def __init__(self, balancer: Balancer) -> None:
        self._lb = balancer

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
        yield from _token_metrics(report["token_usage"])


def _token_metrics(usage: dict[str, Any] | None) -> Iterable[Metric]:
    """Token counters by agent and by model (models beyond `MAX_MODELS` count as `other`)."""
    by_agent = CounterMetricFamily(
        "swarmbalancer_agent_tokens",
        "Tokens reported by an agent's tasks.",
        labels=["agent", "kind"],
    )
    by_model = CounterMetricFamily(
        "swarmbalancer_model_tokens", "Tokens reported per model.", labels=["model", "kind"]
    )
    cost = CounterMetricFamily(
        "swarmbalancer_model_cost", "Cost reported per model.", labels=["model"]
    )
    if usage is not None:
        for family, rows in ((by_agent, usage["per_agent"]), (by_model, usage["per_model"])):
            for name, row in rows.items():
                family.add_metric([name, "input"], row["input_tokens"])
                family.add_metric([name, "output"], row["output_tokens"])
        for name, row in usage["per_model"].items():
            if row["cost"] is not None:
                cost.add_metric([name], row["cost"])
    yield by_agent
    yield by_model
    yield cost


class ServiceMetrics:
    """The registry `/metrics` serves, and the histograms tasks feed as they end."""

    def __init__(self, balancer: Balancer) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_BalancerCollector(balancer))
        self._now = balancer.now
        self.sojourn = Histogram(
            "swarmbalancer_task_sojourn_seconds",
            "Time from submission to the end of a task's last attempt.",
            ["priority", "outcome"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.queue = Histogram(
            "swarmbalancer_task_queue_seconds",
            "Time from submission to the start of a task's last attempt.",
            ["priority"],
            buckets=BUCKETS,
            registry=self.registry,
        )

    def task_ended(self, handle: TaskHandle) -> None:
        """Observe a finished task's latencies (a cancelled one only ends, it is not timed)."""
        task = handle.task
        if handle.cancelled() or task.state is TaskState.CANCELLED:
            return
        priority = task.priority.name.lower()
        outcome = "completed" if handle.exception() is None else "failed"
        end = task.finished_at if task.finished_at is not None else self._now()
        self.sojourn.labels(priority, outcome).observe(max(0.0, end - task.submitted_at))
        if task.started_at is not None:
            self.queue.labels(priority).observe(max(0.0, task.started_at - task.submitted_at))

    def render(self) -> bytes:
        return generate_latest(self.registry)
