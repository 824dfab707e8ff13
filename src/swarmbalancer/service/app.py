"""The ASGI app: routers, error handlers, the body limit, and the service's start and stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from swarmbalancer import __version__
from swarmbalancer.service import errors
from swarmbalancer.service.core import Service
from swarmbalancer.service.demo import hosted_feeder, hosting
from swarmbalancer.service.limits import BodyLimit
from swarmbalancer.service.responses import EVERY_ROUTE
from swarmbalancer.service.routes import agents, dashboard, insight, system, tasks
from swarmbalancer.service.settings import ServeSettings, check_bind


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """Build the app for `settings` (refusing an open non-loopback bind); the balancer starts
    with the app's lifespan and stops, cancelling what is left, when the app shuts down."""
    settings = settings or ServeSettings()
    check_bind(settings.host, settings.tokens)
    service = Service(settings)
    from swarmbalancer.mcp.http import McpEndpoint  # mcp/ builds on service/: import it late

    mcp = McpEndpoint(service)
    feeder = hosted_feeder(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            async with mcp.running(), hosting(feeder):
                yield
        finally:
            await service.stop()

    app = FastAPI(
        title="swarmbalancer",
        version=__version__,
        description="A swarm's load balancer as a service: tasks, HTTP agents, configuration, "
        "report, Prometheus metrics, and a live dashboard at / (its event stream, "
        "GET /v1/events, is not listed here: it never ends by itself).",
        lifespan=lifespan,
        responses=EVERY_ROUTE,
    )
    app.state.service = service
    app.state.feeder = feeder
    for router in (tasks.router, agents.router, system.router, insight.router, dashboard.router):
        app.include_router(router)
    app.router.routes.append(mcp.route)
    errors.install(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
