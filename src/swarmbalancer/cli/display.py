"""Rich rendering: the live progress display of a run and the report tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from swarmbalancer.coordinator import Coordinator
from swarmbalancer.metrics.stats import jain_index


class LiveView:
    """A progress bar of finished tasks over accepted ones, and one load bar per agent."""

    def __init__(self, total: int, console: Console, max_agents: int = 24) -> None:
        self.total = total
        self.console = console
        self.max_agents = max_agents
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._main = self.progress.add_task("tasks", total=total)

    def render(self, coord: Coordinator) -> Group:
        rec = coord.recorder
        self.progress.update(self._main, completed=rec.completed + rec.failed)
        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right")
        table.add_column()
        table.add_column(justify="right")
        agents = coord.store.agents()[: self.max_agents]
        for agent in agents:
            load = agent.queued + agent.in_flight
            state = coord.breakers[agent.id].state_label
            colour = {"closed": "green", "half_open": "yellow"}.get(state, "red")
            bar = _bar(agent.in_flight / agent.spec.capacity, agent.queued)
            table.add_row(f"[{colour}]{agent.id}[/]", bar, f"{load:>4} ({agent.queued} queued)")
        return Group(self.progress.get_renderable(), table)


def _bar(busy: float, queued: int, width: int = 20) -> str:
    filled = min(width, round(busy * width))
    extra = min(width - filled, queued // 2)
    return (
        "[cyan]"
        + "█" * filled
        + "[/][magenta]"
        + "▒" * extra
        + "[/]"
        + "·" * (width - filled - extra)
    )


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summary_table(report: Mapping[str, Any], title: str = "swarmbalancer report") -> Table:
    """The headline figures of one report."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    makespan, bound = report.get("makespan_s"), report.get("lower_bound_s")
    ratio = makespan / bound if makespan and bound else None
    q, s = report["queue_latency_ms"], report["sojourn_ms"]
    rows: Sequence[tuple[str, Any]] = (
        ("completed", report["completed"]),
        ("failed", report["failed"]),
        ("lost", report["lost"]),
        ("makespan (s)", makespan),
        ("lower bound (s)", bound),
        ("makespan / lower bound", ratio),
        ("throughput (tasks/s)", report["throughput_per_s"]),
        ("queue latency p50 / p99 (ms)", f"{_fmt(q['p50'])} / {_fmt(q['p99'])}"),
        ("sojourn p50 / p99 (ms)", f"{_fmt(s['p50'])} / {_fmt(s['p99'])}"),
        ("utilization", report["utilization"]),
        ("load variance", report["load_variance"]),
        ("Jain's fairness", report["jain_fairness"]),
        ("migration rate", report["migration_rate"]),
        (
            "steals / migrations / retries",
            f"{report['steals']} / {report['migrations']} / {report['retries']}",
        ),
        ("deadline misses", report["deadline_misses"]),
    )
    for name, value in rows:
        table.add_row(name, _fmt(value))
    return table


def agents_table(report: Mapping[str, Any]) -> Table:
    """One row per agent: completions, failures, busy time, utilization, breaker state."""
    table = Table(title="agents", header_style="bold")
    for col in ("agent", "completed", "failed", "busy (s)", "utilization", "breaker"):
        table.add_column(col, justify="left" if col in ("agent", "breaker") else "right")
    for row in report["per_agent"]:
        table.add_row(
            row["id"],
            str(row["completed"]),
            str(row["failed"]),
            _fmt(row["busy_s"]),
            _fmt(row["utilization"]),
            row["breaker_state"],
        )
    return table


def priority_table(report: Mapping[str, Any]) -> Table:
    """Per priority level: completions, share, saturated dispatch share, queue latency p99."""
    table = Table(title="priority levels", header_style="bold")
    for col in ("level", "completed", "share", "share under saturation", "queue p99 (ms)"):
        table.add_column(col, justify="left" if col == "level" else "right")
    for level, row in report["per_priority"].items():
        if not row["completed"]:
            continue
        table.add_row(
            level,
            str(row["completed"]),
            _fmt(row["share"]),
            _fmt(row["saturated_share"]),
            _fmt(row["queue_latency_ms"]["p99"]),
        )
    return table


def comparison_table(
    rows: Sequence[tuple[str, Mapping[str, Any]]], title: str = "simulation"
) -> Table:
    """One row per run (strategy or sweep value): the headline figures side by side."""
    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAVY)
    table.add_column("run", no_wrap=True)
    tenants = any(report.get("per_tenant") for _, report in rows)
    for header in (
        "makespan\n(s)",
        "÷ lower\nbound",
        "tasks/s",
        "queue\np50 (ms)",
        "queue\np99 (ms)",
        "sojourn\np99 (ms)",
        "utili-\nzation",
        "load\nvariance",
        "Jain's\nfairness",
        "migration\nrate",
        "deadline\nmisses",
        "failed",
        "lost",
        *(("tenant\nfairness",) if tenants else ()),
    ):
        table.add_column(header, justify="right", no_wrap=True)
    for label, report in rows:
        makespan, bound = report.get("makespan_s"), report.get("lower_bound_s")
        queue, sojourn = report["queue_latency_ms"], report["sojourn_ms"]
        extra = (_fmt(backlogged_fairness(report)),) if tenants else ()
        table.add_row(
            label,
            _fmt(makespan),
            _fmt(makespan / bound if makespan and bound else None),
            _fmt(report["throughput_per_s"], 1),
            _fmt(queue["p50"], 2),
            _fmt(queue["p99"], 2),
            _fmt(sojourn["p99"], 2),
            _fmt(report["utilization"]),
            _fmt(report["load_variance"], 4),
            _fmt(report["jain_fairness"]),
            _fmt(report["migration_rate"]),
            _fmt(report["deadline_misses"]),
            _fmt(report["failed"]),
            _fmt(report["lost"]),
            *extra,
        )
    return table


def backlogged_fairness(report: Mapping[str, Any]) -> float | None:
    """Jain's index of each tenant's backlogged share over its fair share: 1 when a discipline
    served every tenant by weight while all were backlogged; None without those figures."""
    tenants = report.get("per_tenant") or {}
    ratios = []
    for row in tenants.values():
        share, fair = row.get("backlogged_share"), row.get("fair_share")
        if share is None or not fair:
            return None
        ratios.append(share / fair)
    return jain_index(ratios) if ratios else None
