"""The `simulate --plot` figure: per run, per-agent load over time and the sojourn-time CDF.

matplotlib is optional (the `plot` extra) and drawn with the Agg backend only, never a window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarmbalancer.errors import ConfigError
from swarmbalancer.sim.timeline import Timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Up to this many agents get a line each; more are summarised as mean, max and a 10-90% band.
MAX_AGENT_LINES = 24


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
    require_matplotlib()
    if not path.parent.is_dir():
        raise ConfigError(f"--plot: {path}: directory {path.parent} does not exist")


def write_plot(
    path: Path, runs: Sequence[tuple[str, Timeline, Mapping[str, Any]]], title: str
) -> None:
    """Write a PNG with one row per run: load over time (left), sojourn CDF (right)."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12.0, 0.8 + 2.8 * len(runs)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(runs), 2, squeeze=False)
    for i, (label, timeline, report) in enumerate(runs):
        load_ax, latency_ax = axes[i][0], axes[i][1]
        if i:
            load_ax.sharex(axes[0][0])
            load_ax.sharey(axes[0][0])
            latency_ax.sharex(axes[0][1])
        _load_panel(load_ax, label, timeline)
        _latency_panel(latency_ax, label, timeline, report)
    fig.suptitle(title)
    try:
        fig.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise ConfigError(f"--plot: cannot write {path} ({exc.strerror or exc})") from None


def _load_panel(ax: Axes, label: str, timeline: Timeline) -> None:
    times, series = timeline.times, list(timeline.loads.values())
    if len(series) <= MAX_AGENT_LINES:
        for agent, loads in timeline.loads.items():
            ax.plot(times, loads, linewidth=0.8, label=agent)
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


def _latency_panel(ax: Axes, label: str, timeline: Timeline, report: Mapping[str, Any]) -> None:
    edges, shares = timeline.sojourn.cdf()
    if edges:
        ax.step([e * 1000.0 for e in edges], shares, where="post", linewidth=1.2)
        ax.set_xscale("log")
    for key, style in (("p50", ":"), ("p99", "--")):
        value = report["sojourn_ms"][key]
        if value:
            shown = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
            ax.axvline(
                value, linestyle=style, color="grey", linewidth=0.8, label=f"{key} {shown} ms"
            )
    if edges:
        ax.legend(loc="lower right", fontsize="small")
    ax.set_ylim(0.0, 1.02)
    ax.set_title(f"{label}: sojourn time CDF", fontsize="medium")
    ax.set_xlabel("sojourn (ms, submission to completion)")
    ax.set_ylabel("share of tasks")
