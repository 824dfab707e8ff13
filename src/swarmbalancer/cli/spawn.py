"""`swarmbalancer agent spawn NAME --type coordinator`: the seed's quick start, which here starts
the service (as `serve`); remote workers wait for the distributed mode (issue 11)."""

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
        str | None, typer.Option(help="memory (default) or sqlite:///path.db (durable)")
    ] = None,
    config: Annotated[str | None, typer.Option("--config", "-c", help="overrides as JSON")] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="JSON: token -> {role, agent?}; needed off loopback")
    ] = None,
    file: Annotated[Path, typer.Option("--file", help="configuration file")] = DEFAULT_FILE,
) -> None:
    """Start a coordinator (the service of `serve`, hosting the swarm `NAME`)."""
    try:
        if agent_type == "worker":
            raise ConfigError(
                "--type worker: remote workers arrive with the distributed mode (issue 11); "
                "today an agent joins a coordinator over HTTP (POST /v1/agents, see README)"
            )
        if agent_type != "coordinator":
            raise ConfigError(f"--type: {agent_type!r} is not one of coordinator, worker")
        from swarmbalancer.cli.serve import serve as run_service

        cfg = effective_config(read_file(file), parse_json_option(config))
        typer.echo(f"coordinator of swarm {name!r} on http://{host}:{port}", err=True)
        run_service(host, port, store, cfg, token_file)
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
