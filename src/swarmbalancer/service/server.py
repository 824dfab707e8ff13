"""uvicorn's server, telling the service that it is shutting down before it waits for open
responses: uvicorn ends the app's lifespan only once every response has finished, and an event
stream never finishes by itself, so without this a dashboard left open would hold the shutdown
until its stream's age limit (`ServeSettings.event_max_s`)."""

from __future__ import annotations

import socket

import uvicorn

from swarmbalancer.service.core import Service


class ServiceServer(uvicorn.Server):
    """A `uvicorn.Server` that sets `service.closing` as its shutdown begins."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.service.closing.set()
        await super().shutdown(sockets)
