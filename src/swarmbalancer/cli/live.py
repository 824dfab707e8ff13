"""The seed's commands against a live service (`swarmbalancer serve`): load-balance,
agent-metrics, performance-report, bottleneck-analyze, metrics-collect, config-manage --url and
agent spawn. Rich tables by default, `--json` for scripts; every failure is one line, status 2."""

from __future__ import annotations

import json
import re
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from swarmbalancer.cli import display
from swarmbalancer.cli.client import DEFAULT_URL, ServiceClient
from swarmbalancer.config import STRATEGIES, BalancerConfig, load_config
from swarmbalancer.errors import ConfigError, SwarmBalancerError
from swarmbalancer.metrics.diagnosis import COMPONENTS

err = Console(stderr=True)
out = Console()

#: What `metrics-collect` can collect, and the service route each one reads.
COLLECTABLE = ("load-balancer", "task-queue", "agents", "token-usage", "swarm-coordination")

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help=f"the service (env SWARMBALANCER_URL, default {DEFAULT_URL})"),
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="bearer token (env SWARMBALANCER_TOKEN)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")]


def fail(message: str) -> typer.Exit:
    """Print one error line and return the exit to raise (status 2)."""
    line = " ".join(message.split())
    err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "—" if value is None else str(value)


def load_balance(
    swarm_id: Annotated[str, typer.Option("--swarm-id", help="the swarm the service hosts")],
    strategy: Annotated[
        str | None, typer.Option("--strategy", "-s", help=f"one of {', '.join(STRATEGIES)}")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="plan only, move nothing")] = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the routing strategy (live) and rebalance now, or plan it with --dry-run."""
    try:
        if not swarm_id.strip():
            raise ConfigError("--swarm-id: must not be empty")
        with ServiceClient(url, token) as client:
            current = client.get("/v1/config")["strategy"]
            wanted = load_config({"strategy": strategy}).strategy if strategy else current
            if wanted != current and not dry_run:
                client.patch("/v1/config", {"strategy": wanted})
            result = client.post("/v1/rebalance", apply=not dry_run)
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
    summary = {"swarm_id": swarm_id, "strategy": wanted, **result}
    if as_json:
        _emit_json(summary)
        return
    verb = "would move" if dry_run else "moved"
    moves = result["migrations"]
    title = f"{escape(swarm_id)} · {wanted} · {verb} {len(moves)} task(s)"
    if not result["enabled"]:
        title += " (rebalanceEnabled is off)"
    table = Table(title=title)
    for column in ("task", "from", "to"):
        table.add_column(column)
    for m in moves:
        table.add_row(m["task_id"], m["source"], m["target"])
    out.print(table)


def agent_metrics(
    agent_type: Annotated[
        str | None, typer.Option("--type", help="only agents with this tag")
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="one agent id")] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-agent figures: learned speed and error rate, load, counts, breaker, tokens."""
    try:
        with ServiceClient(url, token) as client:
            rows = client.get("/v1/agent-metrics", agent=agent, type=agent_type)["agents"]
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
    if as_json:
        _emit_json({"agents": rows})
        return
    out.print(agents_table(rows))


def agents_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="agents")
    columns = ("agent", "speed", "error rate", "in flight", "queued", "completed", "failed")
    for column in (*columns, "utilization", "breaker", "tokens in/out"):
        table.add_column(column, justify="left" if column in ("agent", "breaker") else "right")
    for r in rows:
        usage = r["token_usage"]
        tokens = "—" if usage is None else f"{usage['input_tokens']}/{usage['output_tokens']}"
        table.add_row(
            r["id"],
            _fmt(r["speed"]),
            f"{r['error_rate']:.0%}",
            f"{r['in_flight']}/{r['capacity']}",
            str(r["queued"]),
            str(r["completed"]),
            str(r["failed"]),
            _fmt(r["utilization"]),
            r["breaker"],
            tokens,
        )
    return table


def performance_report(
    fmt: Annotated[str, typer.Option("--format", help="summary | detailed | json")] = "summary",
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The live report: a summary, every table (detailed), or the JSON of `/v1/report`."""
    try:
        if fmt not in ("summary", "detailed", "json"):
            raise ConfigError(f"--format: {fmt!r} is not one of summary, detailed, json")
        with ServiceClient(url, token) as client:
            report = client.get("/v1/report")
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
    if as_json or fmt == "json":
        _emit_json(report)
        return
    out.print(display.summary_table(report, title="live report"))
    if fmt == "detailed":
        out.print(display.agents_table(report))
        out.print(display.priority_table(report))
        out.print(usage_table(report["token_usage"]))


def usage_table(usage: dict[str, Any] | None) -> Table:
    table = Table(title="token usage" + (" (none reported)" if usage is None else ""))
    for column in ("by", "name", "input", "output", "cost", "reports"):
        table.add_column(column, justify="left" if column in ("by", "name") else "right")
    if usage is None:
        return table
    table.add_row("total", "", *_usage_cells(usage))
    for by in ("agent", "tenant", "model"):
        for name, row in usage[f"per_{by}"].items():
            table.add_row(by, name, *_usage_cells(row))
    return table


def _usage_cells(row: dict[str, Any]) -> list[str]:
    keys = ("input_tokens", "output_tokens", "cost", "reports")
    return [_fmt(row[k]) for k in keys]


def bottleneck_analyze(
    component: Annotated[
        str, typer.Option("--component", help=f"one of {', '.join(COMPONENTS)}")
    ] = "all",
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The live swarm's bottlenecks, most severe first, with evidence and a setting to try."""
    try:
        with ServiceClient(url, token) as client:
            result = client.get("/v1/diagnosis", component=component)
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
    if as_json:
        _emit_json(result)
        return
    findings = result["findings"]
    if not findings:
        out.print(f"[green]no bottleneck found[/] ({escape(component)})")
        return
    table = Table(title=f"bottlenecks · {escape(component)}", show_lines=True)
    for column in ("#", "severity", "finding", "evidence", "suggestion"):
        table.add_column(column)
    for rank, f in enumerate(findings, 1):
        evidence = "\n".join(f"{k}: {_fmt(v)}" for k, v in f["evidence"].items())
        table.add_row(
            str(rank),
            f"{f['severity']:.2f}",
            escape(f["summary"]),
            escape(evidence),
            escape(f["suggestion"]),
        )
    out.print(table)


def parse_components(words: list[str]) -> list[str]:
    """`'["a","b"]'` (one word), or the seed's unquoted `["a", "b"]` the shell split into
    `[a,` and `b]`, or plain `a,b`: the component names, each checked."""
    text = " ".join(words).strip()
    names: list[str]
    try:
        parsed = json.loads(text)
    except ValueError:
        names = [n for n in re.split(r"[\s,]+", text.strip("[]")) if n]
        names = [n.strip("\"'") for n in names]
    else:
        if not isinstance(parsed, list) or not all(isinstance(n, str) for n in parsed):
            raise ConfigError("--components: expected a list of names, e.g. '[\"task-queue\"]'")
        names = parsed
    if not names:
        raise ConfigError(f"--components: name at least one of {', '.join(COLLECTABLE)}")
    for name in names:
        if name not in COLLECTABLE:
            raise ConfigError(f"--components: {name!r} is not one of {', '.join(COLLECTABLE)}")
    return list(dict.fromkeys(names))


def collect(client: ServiceClient, component: str) -> dict[str, Any]:
    """One component's current figures, read from the service."""
    if component == "agents":
        return {"agents": client.get("/v1/agent-metrics")["agents"]}
    if component == "token-usage":
        return {"token_usage": client.get("/v1/usage")["token_usage"]}
    report = client.get("/v1/report")
    if component == "load-balancer":
        keys = (
            "accepted",
            "completed",
            "failed",
            "cancelled",
            "open",
            "throughput_per_s",
            "utilization",
            "load_variance",
            "jain_fairness",
            "retries",
        )
        return {k: report[k] for k in keys}
    if component == "task-queue":
        depth = {row["id"]: row["queued"] for row in client.get("/v1/agents")["agents"]}
        return {
            "open": report["open"],
            "queued_at_agents": sum(depth.values()),
            "queue_latency_ms": report["queue_latency_ms"],
            "per_priority": report["per_priority"],
        }
    moves = ("steals", "migrations", "migration_rate", "retries")
    return {
        **{k: report[k] for k in moves},
        "findings": client.get("/v1/diagnosis", component=component)["findings"],
    }


def metrics_collect(
    components: Annotated[
        str, typer.Option("--components", help=f"a JSON list of: {', '.join(COLLECTABLE)}")
    ] = '["load-balancer"]',
    rest: Annotated[list[str] | None, typer.Argument(hidden=True)] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Collect the current figures of some components of the live swarm."""
    try:
        names = parse_components([components, *(rest or [])])
        with ServiceClient(url, token) as client:
            collected = {name: collect(client, name) for name in names}
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
    if as_json:
        _emit_json(collected)
        return
    for name, figures in collected.items():
        table = Table(title=name)
        table.add_column("figure")
        table.add_column("value")
        for key, value in figures.items():
            shown = json.dumps(value) if isinstance(value, dict | list) else _fmt(value)
            table.add_row(key, escape(shown if len(shown) < 400 else shown[:397] + "..."))
        out.print(table)


def config_live(
    action: str, changes: dict[str, Any], keys: list[str], client: ServiceClient
) -> dict[str, Any]:
    """`config-manage --url`: get, validate, update or unset keys of the running configuration;
    returns the configuration after the action (validate: the one it would give)."""
    if action == "get":
        config: dict[str, Any] = client.get("/v1/config")
        return config
    if action == "validate":
        return load_config({**client.get("/v1/config"), **changes}).to_dict()
    if action == "update":
        if not changes:
            raise ConfigError("--config: `update` needs the keys to change, as JSON")
        updated: dict[str, Any] = client.patch("/v1/config", changes)
        return updated
    if action == "unset":
        if not keys:
            raise ConfigError("--key: `unset` needs the key(s) to reset")
        defaults = BalancerConfig().to_dict()
        reset = {}
        for key in keys:
            camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)
            if camel not in defaults:
                raise ConfigError(f"--key: {key!r} is not a configuration key")
            reset[camel] = defaults[camel]
        updated = client.patch("/v1/config", reset)
        return updated
    raise ConfigError(f"--action: {action!r} is not one of get, validate, update, unset")


def register(app: typer.Typer) -> None:
    """Add the seed's live commands to the `swarmbalancer` app."""
    app.command("load-balance")(load_balance)
    app.command("agent-metrics")(agent_metrics)
    app.command("performance-report")(performance_report)
    app.command("bottleneck-analyze")(bottleneck_analyze)
    app.command("metrics-collect")(metrics_collect)
