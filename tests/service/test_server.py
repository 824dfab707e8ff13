"""The real thing: uvicorn serving the app on a free loopback port, started and stopped; and
the `serve` command refusing an open API off loopback."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import uvicorn

from clihelpers import invoke, one_line_error
from swarmbalancer.service import ServeSettings, create_app


@pytest.mark.timeout(20)
def test_uvicorn_serves_the_api_and_stops() -> None:
    async def main() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        app = create_app(ServeSettings(port=port))
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with asyncio.timeout(10):
                # uvicorn.Server exposes its start only as this flag, not as an event
                while not server.started:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                assert (await client.get("/health")).json()["status"] == "ok"
                submitted = await client.post("/v1/tasks", json={"payload": 1})
                assert submitted.status_code == 201
                assert (await client.get("/openapi.json")).json()["info"]["title"] == (
                    "swarmbalancer"
                )
        finally:
            server.should_exit = True
            await asyncio.wait_for(serving, 10)
            sock.close()
        assert app.state.service.balancer.report()["cancelled"] == 1  # stopped: not drained

    asyncio.run(main())


def test_serve_refuses_a_non_loopback_host_without_tokens() -> None:
    line = one_line_error(invoke("serve", "--host", "0.0.0.0", "--file", "/nonexistent.json"))
    assert line.startswith("error: host: '0.0.0.0' is not a loopback address")
    assert "--token-file" in line
