"""`/mcp` on a real uvicorn serving the app on a free loopback port: the SDK's streamable HTTP
client, the service's bearer tokens and roles, and tasks shared with the HTTP API."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import httpx2
import pytest
import uvicorn
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mcphelpers import TOOLS, error_line, payload
from servicehelpers import ADMIN, AGENT_A1, READ, SUBMIT, bearer, with_tokens
from swarmbalancer.service import create_app

pytestmark = pytest.mark.timeout(30)


@asynccontextmanager
async def uvicorn_app() -> AsyncIterator[str]:
    """The app with tokens on a free loopback port; yields its base URL, stops in teardown."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(with_tokens(port=port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 (uvicorn exposes its start as a flag)
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        sock.close()


@asynccontextmanager
async def session(base: str, token: str) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers=bearer(token), timeout=10) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as client,
    ):
        await client.initialize()
        yield client


def test_tools_over_streamable_http_with_roles_from_the_tokens() -> None:
    async def main() -> None:
        async with uvicorn_app() as base:
            async with session(base, SUBMIT) as submitter:
                assert {t.name for t in (await submitter.list_tools()).tools} == TOOLS
                task = payload(await submitter.call_tool("task_submit", {"payload": {"n": 1}}))
            async with httpx.AsyncClient(base_url=base, headers=bearer(READ)) as api:
                seen = (await api.get(f"/v1/tasks/{task['id']}")).json()
                assert seen["id"] == task["id"] and seen["state"] == "pending"  # no agent yet
            async with session(base, READ) as reader:
                for tool in ("agent_list", "agent_metrics", "performance_report",
                             "bottleneck_analyze", "token_usage", "load_balance"):  # fmt: skip
                    assert isinstance(payload(await reader.call_tool(tool, {})), dict)
                status = payload(await reader.call_tool("task_status", {"task_id": task["id"]}))
                assert status["state"] == "pending"
                for tool, arguments in [
                    ("load_balance", {"apply": True}),
                    ("config_manage", {"action": "update", "config": {"maxRetries": 1}}),
                    ("task_submit", {"payload": 1}),
                ]:
                    assert error_line(await reader.call_tool(tool, arguments)).startswith(
                        f"{tool}: forbidden: role read may not"
                    )
                assert "Input should be" in error_line(
                    await reader.call_tool("agent_metrics", {"agent_id": ["x"]})
                )
                assert payload(await reader.call_tool("agent_list", {})) == {"agents": []}
            async with session(base, ADMIN) as admin:
                changed = await admin.call_tool(
                    "config_manage", {"action": "update", "config": {"maxRetries": 1}}
                )
                assert payload(changed)["config"]["maxRetries"] == 1
                assert payload(await admin.call_tool("load_balance", {"apply": True}))["applied"]

    asyncio.run(main())


def test_mcp_without_a_known_token_or_with_an_agent_token_is_refused() -> None:
    async def main() -> None:
        async with uvicorn_app() as base, httpx.AsyncClient(base_url=base) as http:
            hello = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            accept = {"Accept": "application/json, text/event-stream"}
            assert (await http.post("/mcp", json=hello, headers=accept)).status_code == 401
            unknown = {**accept, **bearer("not-a-token-0123456789")}
            assert (await http.post("/mcp", json=hello, headers=unknown)).status_code == 401
            agent = {**accept, **bearer(AGENT_A1)}
            refused = await http.post("/mcp", json=hello, headers=agent)
            assert refused.status_code == 403 and "agent" in refused.json()["detail"]
            assert (await http.get("/health")).status_code == 200  # the service goes on

    asyncio.run(main())
