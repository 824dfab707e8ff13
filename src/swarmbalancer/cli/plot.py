"""The `simulate --plot` figure: per run, the per-agent load over time (left column), and the runs'
sojourn-time CDFs overlaid in one panel (right), so strategies compare at a glance.

matplotlib is optional (the `plot` extra) and drawn with the Agg backend only, never a window; only
PNG is written, and any other extension is refused before simulating.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarmbalancer.errors import ConfigError
from swarmbalancer.sim.timeline import Timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Up to this many agents get a line each; more are summarised as mean, max and a 10-90% band.
MAX_AGENT_LINES = 24
#: Up to this many agents get a legend entry each; more share one colour and entry per group
#: (the id without its `-<n>` suffix: `slow-0`..`slow-5` are group `slow`).
MAX_LEGEND_AGENTS = 8


def require_matplotlib() -> None:
    """Raise a ConfigError naming `--plot` and the extra to install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--plot: matplotlib is not installed; install swarmbalancer[plot] "
            "(pip install 'swarmbalancer[plot]')"
        ) from None


def check_target(path: Path) -> None:
    """Fail before simulating when the PNG could not be written: matplotlib or directory missing."""
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--plot: {path}: only PNG is written; give a file name ending in .png")
    require_matplotlib()
    if not path.parent.is_dir():
        raise ConfigError(f"--plot: {path}: directory {path.parent} does not exist")


def write_plot(
    path: Path, runs: Sequence[tuple[str, Timeline, Mapping[str, Any]]], title: str
) -> None:
    """Write a PNG: one load panel per run (left column) and one panel overlaying every run's
    sojourn CDF (right)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13.0, 0.8 + max(2.8 * len(runs), 4.0)), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(runs), 2)
    first: Axes | None = None
    for i, (label, timeline, _) in enumerate(runs):
        load_ax = fig.add_subplot(grid[i, 0], sharex=first, sharey=first)
        first = first or load_ax
        _load_panel(load_ax, label, timeline)
    _latency_panel(fig.add_subplot(grid[:, 1]), runs)
    fig.suptitle(title)
    try:
        fig.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise ConfigError(f"--plot: cannot write {path} ({exc.strerror or exc})") from None


def _load_panel(ax: Axes, label: str, timeline: Timeline) -> None:
    times, series = timeline.times, list(timeline.loads.values())
    if len(series) <= MAX_LEGEND_AGENTS:
        for agent, loads in timeline.loads.items():
            ax.plot(times, loads, linewidth=0.8, label=agent)
        if series:
            ax.legend(loc="upper right", fontsize="x-small")
    elif len(series) <= MAX_AGENT_LINES:
        groups = agent_groups(list(timeline.loads))
        for colour, (group, members) in enumerate(groups.items()):
            for j, agent in enumerate(members):
                ax.plot(
                    times,
                    timeline.loads[agent],
                    linewidth=0.8,
                    color=f"C{colour % 10}",
                    label=f"{group} ({len(members)})" if j == 0 else None,
                )
        ax.legend(loc="upper right", fontsize="x-small")
    else:
        columns = [sorted(column) for column in zip(*series, strict=True)]
        ax.fill_between(
            times,
            [_rank(c, 0.1) for c in columns],
            [_rank(c, 0.9) for c in columns],
            alpha=0.3,
            label="10-90% of agents",
        )
        ax.plot(times, [sum(c) / len(c) for c in columns], linewidth=1.0, label="mean")
        ax.plot(times, [c[-1] for c in columns], linewidth=0.8, label="max")
        ax.legend(loc="upper right", fontsize="small")
    ax.set_title(f"{label}: load per agent (queued + running)", fontsize="medium")
    ax.set_xlabel("virtual time (s)")
    ax.set_ylabel("tasks")


def _rank(ordered: Sequence[int], q: float) -> int:
    return ordered[min(len(ordered) - 1, math.floor(q * len(ordered)))]


def agent_groups(agent_ids: Sequence[str]) -> dict[str, list[str]]:
    """Agents by group, in first-seen order: the id without a trailing `-<number>`."""
    groups: dict[str, list[str]] = {}
    for agent in agent_ids:
        groups.setdefault(_SUFFIX.sub("", agent) or agent, []).append(agent)
    return groups


_SUFFIX = re.compile(r"-[0-9]+$")


def _latency_panel(ax: Axes, runs: Sequence[tuple[str, Timeline, Mapping[str, Any]]]) -> None:
    drawn = False
    for i, (label, timeline, report) in enumerate(runs):
        edges, shares = timeline.sojourn.cdf()
        if not edges:
            continue
        p99 = report["sojourn_ms"]["p99"]
        shown = f"{p99:,.0f}" if p99 >= 100 else f"{p99:.3g}"
        colour = f"C{i % 10}"
        ax.step(
            [e * 1000.0 for e in edges],
            shares,
            where="post",
            linewidth=1.2,
            color=colour,
            label=f"{label} (p99 {shown} ms)",
        )
        if p99:
            ax.axvline(p99, linestyle="--", color=colour, linewidth=0.6)
        drawn = True
    if drawn:
        ax.set_xscale("log")
        ax.legend(loc="lower right", fontsize="small")
    ax.axhline(0.99, linestyle=":", color="grey", linewidth=0.6)
    ax.set_ylim(0.0, 1.02)
    ax.set_title("sojourn time CDF, every run (dashed: p99)", fontsize="medium")
    ax.set_xlabel("sojourn (ms, submission to completion)")
    ax.set_ylabel("share of tasks")
