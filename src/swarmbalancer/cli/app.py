"""The `swarmbalancer` command: run, simulate and demo workloads, and manage configuration."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from swarmbalancer.cli import display, settings
from swarmbalancer.cli.settings import DEFAULT_FILE, effective_config, parse_json_option, read_file
from swarmbalancer.config import STRATEGIES, BalancerConfig, load_config
from swarmbalancer.errors import ConfigError, SwarmBalancerError

app = typer.Typer(
    name="swarmbalancer",
    help="Spread tasks across a swarm of agents: routing, stealing, priorities, breakers, metrics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

StrategyOpt = Annotated[
    str | None, typer.Option("--strategy", "-s", help=f"one of {', '.join(STRATEGIES)}")
]
ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="config overrides as JSON")]
FileOpt = Annotated[Path, typer.Option("--file", help="configuration file")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print the report as JSON on stdout")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no live display")]


def fail(message: str) -> typer.Exit:
    """Print one clear error line and return the exit to raise (status 2)."""
    line = " ".join(message.split())  # one line, whatever a value in the message held
    err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _config(
    workload_layer: dict[str, Any], config: str | None, strategy: str | None, file: Path
) -> BalancerConfig:
    flags = {"strategy": strategy} if strategy else {}
    return effective_config(read_file(file), workload_layer, parse_json_option(config), flags)


@app.command()
def run(
    workload: Annotated[Path, typer.Argument(help="workload file (YAML or JSON)")],
    strategy: StrategyOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    handler: Annotated[
        str | None, typer.Option(help="module:function to run each task with")
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="memory (default) or sqlite:///path.db (durable)")
    ] = None,
    file: FileOpt = DEFAULT_FILE,
) -> None:
    """Run a workload for real in the embedded runtime and report what happened."""
    from swarmbalancer.workload import load_workload

    try:
        spec = load_workload(workload)
        cfg = _config({"seed": spec.seed, **(spec.config or {})}, config, strategy, file)
        user_handler = _load_handler(handler) if handler else None
        report = _run_live(
            spec, cfg, user_handler, quiet or as_json, title=workload.name, store=store
        )
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
    _emit(report, as_json, title=f"{workload.name} · {cfg.strategy}")


@app.command()
def simulate(
    workload: Annotated[Path, typer.Argument(help="workload file (YAML or JSON)")],
    strategy: Annotated[
        str | None,
        typer.Option("--strategy", "-s", help="a strategy, several separated by commas, or all"),
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    plot: Annotated[
        Path | None, typer.Option(help="write a PNG: load per agent over time, sojourn CDF")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option(help="KEY=V1,V2,...: one run per value of a configuration key")
    ] = None,
    quiet: QuietOpt = False,
    file: FileOpt = DEFAULT_FILE,
) -> None:
    """Simulate a workload in virtual time (the policies of `run`) and compare strategies."""
    from swarmbalancer.cli import simulate as sim
    from swarmbalancer.cli.plot import check_target, write_plot
    from swarmbalancer.workload import load_workload

    try:
        if plot is not None:
            check_target(plot)
        spec = load_workload(workload)
        layer = {"seed": spec.seed, **(spec.config or {})}
        runs = sim.plan_runs(
            lambda name: _config(layer, config, name, file),
            sim.parse_strategies(strategy),
            sim.parse_sweep(sweep),
        )
        console = None if quiet or as_json else err
        results = sim.run_all(spec, runs, timelines=plot is not None, console=console)
        if plot is not None:
            timelines = [(r.label, r.timeline, r.report) for r in results if r.timeline]
            write_plot(plot, timelines, title=f"{workload.name} (simulated)")
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
    if plot is not None and console is not None:
        err.print(f"plot written to {plot}")
    sim.emit(results, as_json, out, title=f"{workload.name} · simulated")


@app.command()
def demo(
    strategy: StrategyOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    file: FileOpt = DEFAULT_FILE,
) -> None:
    """A built-in heterogeneous swarm with a failing agent, run live (about 10 seconds)."""
    from swarmbalancer.workload.demo import demo_workload

    try:
        spec = demo_workload()
        cfg = _config({"seed": spec.seed, **(spec.config or {})}, config, strategy, file)
        if not quiet and not as_json:
            err.print(f"[bold]demo[/]: {spec.description}")
        report = _run_live(spec, cfg, None, quiet or as_json, title="demo")
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
    _emit(report, as_json, title=f"demo · {cfg.strategy}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8787,
    store: Annotated[
        str | None,
        typer.Option(help="memory (default), sqlite:///path.db or redis://host/0?swarm=ID"),
    ] = None,
    config: ConfigOpt = None,
    token_file: Annotated[
        Path | None, typer.Option(help="JSON: token -> {role, agent?}; needed off loopback")
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="host the built-in demo swarm (12 synthetic agents, a failing and a slowed one), "
            "its ~10 s workload repeated in a loop until the service stops",
        ),
    ] = False,
    file: FileOpt = DEFAULT_FILE,
    keep_finished: Annotated[
        int, typer.Option(min=0, help="finished tasks kept readable by id in memory")
    ] = 100_000,
) -> None:
    """Host a balancer behind an HTTP API: tasks, HTTP agents, config, report, /metrics."""
    from swarmbalancer.cli.serve import serve as run_service
    from swarmbalancer.workload.demo import demo_workload

    try:
        spec = demo_workload() if demo else None
        layer = {} if spec is None else {"seed": spec.seed, **(spec.config or {})}
        cfg = effective_config(read_file(file), layer, parse_json_option(config))
        run_service(host, port, store, cfg, token_file, spec, keep_finished=keep_finished)
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None


@app.command()
def coordinator(
    store: Annotated[
        str, typer.Option(help="redis://[:password@]host:port/db (rediss:// for TLS)")
    ],
    swarm_id: Annotated[
        str | None,
        typer.Option("--swarm-id", help="the swarm (default: the URL's swarm, else default)"),
    ] = None,
    config: ConfigOpt = None,
    lease_ttl: Annotated[
        float | None, typer.Option(min=0.1, max=3600, help="leader lease TTL in seconds (10)")
    ] = None,
    heartbeat_timeout: Annotated[
        float, typer.Option(min=0.1, help="seconds without a beat before a worker is lost")
    ] = 10.0,
    file: FileOpt = DEFAULT_FILE,
) -> None:
    """Schedule a Redis swarm while this process holds its leader lease (others stand by);
    exits 3 when the lease is lost."""
    from swarmbalancer.cli.coordinator import run as run_coordinator

    try:
        code = run_coordinator(store, swarm_id, config, file, lease_ttl, heartbeat_timeout)
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(code)


@app.command("mcp")
def mcp_stdio(
    workload: Annotated[
        Path | None, typer.Option("--file", help="workload file; the built-in demo by default")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Serve the MCP tools over stdio on an embedded swarm running a workload (for an LLM
    client); the service has them at /mcp."""
    from swarmbalancer.mcp.stdio import run as run_mcp
    from swarmbalancer.workload import load_workload
    from swarmbalancer.workload.demo import demo_workload

    try:
        spec = demo_workload() if workload is None else load_workload(workload)
        cfg = _config({"seed": spec.seed, **(spec.config or {})}, config, None, DEFAULT_FILE)
        run_mcp(spec, cfg)
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None


@app.command("config-manage")
def config_manage(
    action: Annotated[str, typer.Option(help="get | validate | update | unset")] = "get",
    config: ConfigOpt = None,
    key: Annotated[
        list[str] | None, typer.Option("--key", "-k", help="a key to remove (with --action unset)")
    ] = None,
    file: FileOpt = DEFAULT_FILE,
    url: Annotated[
        str | None, typer.Option("--url", help="work on this live service instead of the file")
    ] = None,
    token: Annotated[str | None, typer.Option("--token", help="its bearer token")] = None,
) -> None:
    """Read, check, update or remove keys of the configuration file the other commands use,
    or (with --url) of a live service's running configuration.

    The file is only ever written in camelCase and after the whole result passed the validation
    `Balancer` applies, so every later command accepts what `update` or `unset` wrote.
    """
    try:
        if url is not None:
            from swarmbalancer.cli.client import ServiceClient
            from swarmbalancer.cli.live import config_live

            with ServiceClient(url, token) as client:
                changes = parse_json_option(config) if config else {}
                out.print_json(json.dumps(config_live(action, changes, key or [], client)))
        elif action == "get":
            cfg = effective_config(read_file(file), parse_json_option(config))
            out.print_json(json.dumps(cfg.to_dict()))
        elif action == "validate":
            changes = parse_json_option(config) if config else read_file(file)
            load_config(changes)
            err.print(f"[green]valid[/]: {len(changes)} key(s) checked")
        elif action == "update":
            if not config:
                raise ConfigError("--config: `update` needs the keys to change, as JSON")
            changed = settings.update_file(file, parse_json_option(config))
            err.print(f"[green]updated[/] {escape(str(file))}: {', '.join(changed)}")
        elif action == "unset":
            if not key:
                raise ConfigError("--key: `unset` needs the key(s) to remove")
            removed = settings.unset_keys(file, key)
            what = ", ".join(removed) if removed else "nothing (the key(s) were not set)"
            err.print(f"[green]removed[/] from {escape(str(file))}: {what}")
        else:
            raise ConfigError(f"--action: {action!r} is not one of get, validate, update, unset")
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None


def _load_handler(ref: str) -> Any:
    """`--handler module:function`, importable from the working directory as `python -m` would;
    any error raised while importing the user's module becomes one line naming the option."""
    from swarmbalancer.runtime.runner import load_handler

    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return load_handler(ref)
    except SwarmBalancerError:
        raise
    except Exception as exc:  # the user's module failed while importing: say so, in one line
        raise ConfigError(
            f"--handler: importing {ref!r} raised {type(exc).__name__}: {exc}"
        ) from None


def _run_live(
    spec: Any, cfg: BalancerConfig, handler: Any, quiet: bool, title: str, store: str | None = None
) -> dict[str, Any]:
    from swarmbalancer.runtime.runner import run_workload

    if quiet:
        return asyncio.run(run_workload(spec, cfg, handler=handler, store=store))
    from rich.live import Live

    view: display.LiveView | None = None
    with Live(console=err, refresh_per_second=10, transient=False) as live:

        def progress(coord: Any, total: int) -> None:
            nonlocal view
            if view is None:
                view = display.LiveView(total, err)
            live.update(view.render(coord))

        return asyncio.run(
            run_workload(spec, cfg, handler=handler, on_progress=progress, store=store)
        )


def _emit(report: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
        return
    out.print(display.summary_table(report, title=title))
    out.print(display.agents_table(report))
    out.print(display.priority_table(report))


def _register_live_commands() -> None:
    from swarmbalancer.cli import live
    from swarmbalancer.cli.spawn import agent_app

    live.register(app)
    app.add_typer(agent_app, name="agent")


_register_live_commands()


def _register_cluster_commands() -> None:
    from swarmbalancer.cli.deadletters import dead_letters
    from swarmbalancer.cli.worker import worker

    app.command("worker")(worker)
    app.command("dead-letters")(dead_letters)


_register_cluster_commands()


def main() -> None:
    """Console-script entry point."""
    app()
