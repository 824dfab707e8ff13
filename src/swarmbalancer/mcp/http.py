"""`/mcp` on the service: the tools over streamable HTTP, behind the service's bearer tokens,
over the service's own balancer and task book."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from starlette.routing import Route

from swarmbalancer.mcp.access import BearerGate
from swarmbalancer.mcp.swarm import LiveSwarm
from swarmbalancer.mcp.tools import build_server
from swarmbalancer.service.core import Service

PATH = "/mcp"


class McpEndpoint:
    """The route to add to the app, and the session manager to run in its lifespan."""

    def __init__(self, service: Service) -> None:
        server = build_server(LiveSwarm(service.balancer, service.book))
        settings = service.settings
        # Builds the session manager; off loopback the SDK's Host-header check is off, and the
        # tokens (required there) guard the endpoint.
        server.streamable_http_app(streamable_http_path=PATH, host=settings.host)
        self._manager = server.session_manager
        gate = BearerGate(StreamableHTTPASGIApp(self._manager), settings.tokens)
        self.route = Route(PATH, gate, methods=["GET", "POST", "DELETE"], include_in_schema=False)

    def running(self) -> AbstractAsyncContextManager[None]:
        """Run the MCP sessions' task group for as long as the service runs."""
        return self._manager.run()
