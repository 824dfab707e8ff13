"""Shared by the service tests: an app over httpx's ASGI transport or on a real uvicorn,
tokens, an HTTP agent."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from swarmbalancer.service import ServeSettings, create_app
from swarmbalancer.service.auth import TokenTable
from swarmbalancer.service.server import ServiceServer

TOKENS = {
    "admin-token-0123456789": {"role": "admin"},
    "submit-token-0123456789": {"role": "submit"},
    "read-token-01234567890": {"role": "read"},
    "agent-a1-token-0123456": {"role": "agent", "agent": "a1"},
    "agent-a2-token-0123456": {"role": "agent", "agent": "a2"},
}
ADMIN, SUBMIT, READ, AGENT_A1, AGENT_A2 = TOKENS


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def with_tokens(**settings: Any) -> ServeSettings:
    return ServeSettings(tokens=TokenTable.from_json(TOKENS), **settings)


@asynccontextmanager
async def serving(
    settings: ServeSettings | None = None,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app, started by its lifespan, and a client talking to it in-process."""
    app = create_app(settings or ServeSettings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield app, client


async def register(
    client: httpx.AsyncClient, agent_id: str, token: str = ADMIN, **fields: Any
) -> None:
    reply = await client.post("/v1/agents", json={"id": agent_id, **fields}, headers=bearer(token))
    assert reply.status_code == 201, reply.text


async def next_lease(
    client: httpx.AsyncClient, agent_id: str, token: str = ADMIN, wait: float = 5
) -> dict[str, Any]:
    reply = await client.get(
        f"/v1/agents/{agent_id}/next", params={"wait": wait}, headers=bearer(token)
    )
    assert reply.status_code == 200, reply.text
    lease: dict[str, Any] = reply.json()
    return lease


async def http_agent(
    client: httpx.AsyncClient,
    agent_id: str,
    work: Callable[[Any], Awaitable[Any]],
    count: int,
    token: str = ADMIN,
) -> None:
    """Serve `count` leases as an HTTP agent does: poll, work, report the result."""
    for _ in range(count):
        lease = await next_lease(client, agent_id, token)
        result = await work(lease["task"]["payload"])
        reply = await client.post(
            f"/v1/agents/{agent_id}/leases/{lease['lease']}",
            json={"result": result},
            headers=bearer(token),
        )
        assert reply.status_code == 200, reply.text


async def doubled(payload: Any) -> Any:
    await asyncio.sleep(0)
    return payload["n"] * 2


class Served:
    """`app` on a real uvicorn (the `serve` command's server) in a thread, on a free loopback
    port; leaving the block shuts it down as Ctrl-C would."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = ServiceServer(config, app.state.service)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self.server.serve([self.sock]),)
        )

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 15) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __exit__(self, *_: Any) -> None:
        self.stop()
        if not self.thread.is_alive():
            self.loop.close()
        self.sock.close()
