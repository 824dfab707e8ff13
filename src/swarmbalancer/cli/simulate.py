"""The `simulate` command's logic: which runs to make (strategies times sweep values), their labels,
running them in virtual time and printing what they gave.

Errors are `ConfigError`s that name the option (`--sweep: ...`), so the command exits with status 2
and one line, as `run` does.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from swarmbalancer.cli import display
from swarmbalancer.config import STRATEGIES, BalancerConfig
from swarmbalancer.documents import DocumentError, loads_json
from swarmbalancer.errors import ConfigError
from swarmbalancer.sim.simulate import simulate
from swarmbalancer.sim.timeline import Timeline
from swarmbalancer.workload import Workload


@dataclass(frozen=True, slots=True)
class Sweep:
    """One configuration key and the values to try, as written (`texts`) and parsed (`values`)."""

    key: str
    texts: tuple[str, ...]
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Run:
    """One simulation to make: its label in the output and its full configuration."""

    label: str
    config: BalancerConfig


@dataclass(frozen=True, slots=True)
class Result:
    """What one run gave: the report (keys of docs/metrics.md) and, when plotting, its timeline."""

    label: str
    report: dict[str, Any]
    timeline: Timeline | None = None


def parse_sweep(text: str | None) -> Sweep | None:
    """`KEY=V1,V2,...`; each value is read as JSON when it parses (5, 0.5, true, {"a": 1, "b": 2}),
    else as text. Commas inside a JSON object, list or string do not separate values."""
    if text is None:
        return None
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--sweep: {text!r} is not KEY=V1,V2,... (e.g. stealThreshold=0,5)")
    texts = tuple(value.strip() for value in split_values(rest))
    if not all(texts):
        raise ConfigError(f"--sweep: {key}: give one or more values separated by commas")
    return Sweep(key, texts, tuple(_value(t) for t in texts))


def split_values(text: str) -> list[str]:
    """Split at the commas outside brackets, braces and double-quoted strings."""
    parts: list[str] = []
    depth, start, quoted, escaped = 0, 0, False, False
    for i, char in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _value(text: str) -> Any:
    try:
        return loads_json(text)
    except DocumentError:
        return text


def parse_strategies(text: str | None) -> list[str | None]:
    """`--strategy`: absent (the configured one), a name, names separated by commas, or `all`."""
    if text is None:
        return [None]
    if text.strip() == "all":
        return list(STRATEGIES)
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ConfigError(f"--strategy: {text!r} names an empty strategy")
    return list(dict.fromkeys(names))


def plan_runs(
    make_config: Callable[[str | None], BalancerConfig],
    strategies: Sequence[str | None],
    sweep: Sweep | None,
) -> list[Run]:
    """One run per strategy, times one per sweep value; `make_config` layers the configuration."""
    runs: list[Run] = []
    for strategy in strategies:
        base = make_config(strategy)
        if sweep is None:
            runs.append(Run(base.strategy, base))
            continue
        for text, value in zip(sweep.texts, sweep.values, strict=True):
            try:
                config = base.updated({sweep.key: value})
            except ConfigError as exc:
                raise ConfigError(f"--sweep: {exc}") from None
            label = f"{sweep.key}={text}"
            runs.append(Run(f"{base.strategy} {label}" if len(strategies) > 1 else label, config))
    return runs


def run_all(
    workload: Workload, runs: Sequence[Run], *, timelines: bool, console: Console | None
) -> list[Result]:
    """Simulate every run in turn; `console` shows which one is running (None: silent)."""
    results: list[Result] = []
    for i, run in enumerate(runs, start=1):
        timeline = Timeline() if timelines else None
        if console is None:
            report = simulate(workload, run.config, timeline=timeline)
        else:
            with console.status(f"simulating [bold]{run.label}[/] ({i}/{len(runs)})"):
                report = simulate(workload, run.config, timeline=timeline)
        results.append(Result(run.label, report, timeline))
    return results


def emit(results: Sequence[Result], as_json: bool, out: Console, title: str) -> None:
    """The report itself (one run) or an object keyed by label as JSON, else a comparison table."""
    if as_json:
        data: Any = results[0].report if len(results) == 1 else {r.label: r.report for r in results}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    table = display.comparison_table([(r.label, r.report) for r in results], title=title)
    if not out.is_terminal:  # a pipe or a file: no terminal to fit, so keep every column whole
        natural = out.measure(table, options=out.options.update_width(1000)).maximum
        out = Console(file=out.file, width=max(out.width, natural))
    out.print(table)
