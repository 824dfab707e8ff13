"""The MCP server: tools over a live swarm, at `/mcp` of `swarmbalancer serve` (streamable
HTTP, behind the service's tokens) and as `swarmbalancer mcp` over stdio (an embedded swarm)."""

from swarmbalancer.mcp.swarm import LiveSwarm
from swarmbalancer.mcp.tools import build_server

__all__ = ["LiveSwarm", "build_server"]
