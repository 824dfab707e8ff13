"""`swarmbalancer serve`: build the service's settings from the options and run uvicorn. Over a
Redis store the service is a leader candidate: while another process holds the swarm's lease it
stands by, and it starts serving once it has taken the swarm over."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from swarmbalancer.config import BalancerConfig
from swarmbalancer.errors import LeaseHeld
from swarmbalancer.workload import Workload

#: Seconds between a standby's attempts at the leader lease.
_STANDBY_RETRY = 0.5


def serve(
    host: str,
    port: int,
    store: str | None,
    config: BalancerConfig,
    token_file: Path | None,
    workload: Workload | None = None,
    *,
    keep_finished: int = 100_000,
) -> None:
    """Serve until interrupted (hosting `workload`'s swarm in a loop when given); a bad bind,
    token file or store raises before listening."""
    import typer
    import uvicorn

    from swarmbalancer.service import ServeSettings, create_app
    from swarmbalancer.service.auth import TokenTable
    from swarmbalancer.service.demo import demo_settings
    from swarmbalancer.service.server import ServiceServer

    tokens = TokenTable.from_file(token_file) if token_file is not None else TokenTable()
    if workload is None:
        settings = ServeSettings(host=host, port=port, store=store, config=config, tokens=tokens)
    else:
        settings = demo_settings(workload, config, host=host, port=port, store=store, tokens=tokens)
    settings = dataclasses.replace(settings, keep_finished=keep_finished)
    app = None
    while app is None:
        try:
            app = create_app(settings)
        except LeaseHeld as exc:
            typer.echo(f"standing by ({exc}); serving once the lease is free", err=True)
            time.sleep(_STANDBY_RETRY)
    server = uvicorn.Config(app, host=host, port=port, server_header=False, proxy_headers=False)
    ServiceServer(server, app.state.service).run()
