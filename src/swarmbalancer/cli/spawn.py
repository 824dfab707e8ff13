"""`swarmbalancer agent spawn NAME --type coordinator|worker`: the seed's quick start. A
coordinator is the service (as `serve`), or with a `redis://` store the elected coordinator of
the Redis swarm NAME (as `coordinator`); a worker joins the Redis swarm NAME (as `worker`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from swarmbalancer.cli.live import fail
from swarmbalancer.cli.settings import DEFAULT_FILE, effective_config, parse_json_option, read_file
from swarmbalancer.errors import ConfigError, SwarmBalancerError

agent_app = typer.Typer(help="Start members of a swarm.", no_args_is_help=True)


@agent_app.command("spawn")
def spawn(
    name: Annotated[str, typer.Argument(help="the swarm's name, e.g. load-balancer")],
    agent_type: Annotated[str, typer.Option("--type", help="coordinator | worker")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8787,
    store: Annotated[
        str | None,
        typer.Option(help="memory (default), sqlite:///path.db (durable) or redis://host/0"),
    ] = None,
    config: Annotated[str | None, typer.Option("--config", "-c", help="overrides as JSON")] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="JSON: token -> {role, agent?}; needed off loopback")
    ] = None,
    file: Annotated[Path, typer.Option("--file", help="configuration file")] = DEFAULT_FILE,
    handler: Annotated[
        str | None, typer.Option("--handler", help="worker: module:function run for each task")
    ] = None,
    capacity: Annotated[int, typer.Option("--capacity", help="worker: tasks run at once")] = 1,
) -> None:
    """Start a coordinator (the service of `serve` hosting the swarm `NAME`; with a redis://
    store, the elected coordinator of that Redis swarm) or a worker of a Redis swarm."""
    try:
        redis = store is not None and store.startswith(("redis://", "rediss://"))
        if agent_type == "worker":
            if not redis or store is None:
                raise ConfigError("--store: a worker joins a Redis swarm: give --store redis://...")
            if handler is None:
                raise ConfigError("--handler: a worker needs module:function to run its tasks")
            from swarmbalancer.cli.worker import worker

            worker(store=store, handler=handler, capacity=capacity, swarm_id=name)
            return
        if agent_type != "coordinator":
            raise ConfigError(f"--type: {agent_type!r} is not one of coordinator, worker")
        if redis and store is not None:
            from swarmbalancer.cli.coordinator import run as run_coordinator

            typer.echo(f"coordinator of Redis swarm {name!r}", err=True)
            raise typer.Exit(run_coordinator(store, name, config, file, None, 10.0))
        from swarmbalancer.cli.serve import serve as run_service

        cfg = effective_config(read_file(file), parse_json_option(config))
        typer.echo(f"coordinator of swarm {name!r} on http://{host}:{port}", err=True)
        run_service(host, port, store, cfg, token_file)
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
