"""`swarmbalancer serve`: build the service's settings from the options and run uvicorn."""

from __future__ import annotations

from pathlib import Path

from swarmbalancer.config import BalancerConfig
from swarmbalancer.workload import Workload


def serve(
    host: str,
    port: int,
    store: str | None,
    config: BalancerConfig,
    token_file: Path | None,
    workload: Workload | None = None,
) -> None:
    """Serve until interrupted (hosting `workload`'s swarm in a loop when given); a bad bind,
    token file or store raises before listening."""
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
    app = create_app(settings)
    server = uvicorn.Config(app, host=host, port=port, server_header=False, proxy_headers=False)
    ServiceServer(server, app.state.service).run()
