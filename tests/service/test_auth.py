"""Tokens and roles: no token is 401, a role is refused (403) what it may not do, an agent
token touches only its own agent and leases, and an open API never leaves loopback."""

from __future__ import annotations

import asyncio

import pytest

from servicehelpers import (
    ADMIN,
    AGENT_A1,
    AGENT_A2,
    READ,
    SUBMIT,
    bearer,
    next_lease,
    register,
    serving,
    with_tokens,
)
from swarmbalancer.errors import ConfigError
from swarmbalancer.service import ServeSettings, create_app
from swarmbalancer.service.auth import TokenTable
from swarmbalancer.service.settings import check_bind

#: (method, path, body) of every route guarded by a role, and the tokens it admits.
ROUTES: list[tuple[str, str, object, set[str]]] = [
    ("POST", "/v1/tasks", {"payload": 1}, {ADMIN, SUBMIT}),
    ("POST", "/v1/tasks/batch", {"items": [{"payload": 1}]}, {ADMIN, SUBMIT}),
    ("GET", "/v1/tasks/t1", None, {ADMIN, SUBMIT, READ}),
    ("POST", "/v1/tasks/t1/cancel", None, {ADMIN, SUBMIT}),
    ("GET", "/v1/agents", None, {ADMIN, SUBMIT, READ}),
    ("POST", "/v1/agents", {"id": "a1"}, {ADMIN, AGENT_A1}),
    ("POST", "/v1/agents/a1/heartbeat", None, {ADMIN, AGENT_A1}),
    ("GET", "/v1/agents/a1/next", None, {ADMIN, AGENT_A1}),
    ("POST", "/v1/agents/a1/leases/L", {"result": 1}, {ADMIN, AGENT_A1}),
    ("DELETE", "/v1/agents/a1", None, {ADMIN, AGENT_A1}),
    ("GET", "/v1/config", None, {ADMIN, SUBMIT, READ}),
    ("PATCH", "/v1/config", {"maxRetries": 1}, {ADMIN}),
    ("GET", "/v1/report", None, {ADMIN, SUBMIT, READ}),
    ("GET", "/metrics", None, {ADMIN, SUBMIT, READ}),
]
EVERY_TOKEN = (ADMIN, SUBMIT, READ, AGENT_A1, AGENT_A2)


@pytest.mark.timeout(20)
def test_every_role_is_refused_what_it_may_not_do_and_no_token_is_401() -> None:
    async def main() -> None:
        async with serving(with_tokens()) as (_, client):
            for method, path, body, allowed in ROUTES:
                anonymous = await client.request(method, path, json=body)
                assert anonymous.status_code == 401, (method, path)
                assert anonymous.headers["www-authenticate"] == "Bearer"
                forged = await client.request(method, path, json=body, headers=bearer("x" * 32))
                assert forged.status_code == 401, (method, path)
                for token in EVERY_TOKEN:
                    reply = await client.request(method, path, json=body, headers=bearer(token))
                    if token in allowed:
                        assert reply.status_code not in (401, 403), (method, path, token)
                    else:
                        assert reply.status_code == 403, (method, path, token, reply.text)
            assert (await client.get("/health")).status_code == 200  # liveness needs no token

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_an_agent_token_cannot_report_on_another_agents_lease() -> None:
    async def main() -> None:
        async with serving(with_tokens()) as (_, client):
            await register(client, "a1", token=AGENT_A1)
            await register(client, "a2", token=AGENT_A2)
            admin = bearer(ADMIN)
            await client.post("/v1/tasks", json={"payload": 1, "affinity": ["a1"]}, headers=admin)
            lease = (await next_lease(client, "a1", AGENT_A1))["lease"]
            through_a1 = await client.post(
                f"/v1/agents/a1/leases/{lease}", json={"result": 2}, headers=bearer(AGENT_A2)
            )
            assert through_a1.status_code == 403
            through_own = await client.post(
                f"/v1/agents/a2/leases/{lease}", json={"result": 2}, headers=bearer(AGENT_A2)
            )
            assert through_own.status_code == 404
            assert through_own.json()["field"] == "lease_id"
            steal = await client.get("/v1/agents/a1/next", headers=bearer(AGENT_A2))
            assert steal.status_code == 403
            owner = await client.post(
                f"/v1/agents/a1/leases/{lease}", json={"result": 2}, headers=bearer(AGENT_A1)
            )
            assert owner.status_code == 200

    asyncio.run(main())


def test_an_open_api_is_refused_off_loopback() -> None:
    with pytest.raises(ConfigError, match=r"^host: '0.0.0.0' is not a loopback address"):
        create_app(ServeSettings(host="0.0.0.0"))
    with pytest.raises(ConfigError, match=r"host: 'example\.org'"):
        check_bind("example.org", TokenTable())
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind(host, TokenTable())
    check_bind("0.0.0.0", TokenTable.from_json({"t" * 16: {"role": "read"}}))


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "expected a JSON object"),
        ({"short": {"role": "admin"}}, "entry 1: token shorter than 16"),
        ({"t" * 16: {"role": "root"}}, "entry 1.role: must be one of"),
        ({"t" * 16: {"role": "agent"}}, "entry 1.agent: an agent token names its agent id"),
        ({"t" * 16: {"role": "read", "agent": "a1"}}, "entry 1.agent: only an agent token"),
        ({"t" * 16: {"role": "read", "x": 1}}, r"entry 1: expected \{role, agent\?\}"),
    ],
)
def test_a_bad_token_file_is_refused_naming_the_entry(entries: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TokenTable.from_json(entries)
