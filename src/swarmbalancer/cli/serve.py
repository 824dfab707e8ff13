"""`swarmbalancer serve`: build the service's settings from the options and run uvicorn."""

from __future__ import annotations

from pathlib import Path

from swarmbalancer.config import BalancerConfig


def serve(
    host: str, port: int, store: str | None, config: BalancerConfig, token_file: Path | None
) -> None:
    """Serve until interrupted; a bad bind, token file or store raises before listening."""
    import uvicorn

    from swarmbalancer.service import ServeSettings, create_app
    from swarmbalancer.service.auth import TokenTable

    tokens = TokenTable.from_file(token_file) if token_file is not None else TokenTable()
    settings = ServeSettings(host=host, port=port, store=store, config=config, tokens=tokens)
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, server_header=False, proxy_headers=False)
