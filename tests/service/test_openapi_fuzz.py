"""The OpenAPI surface fuzzed with schemathesis, in-process over ASGI, as every role: no request
is ever a 5xx, every response conforms to what the schema documents for it, and no role is
allowed an operation outside its role (checked against a role table written out here, not
read from the app).

One service serves the whole module (started by its lifespan, stopped at the end). Examples per
operation follow tests/fuzz's convention: few and derandomised in CI, `make fuzz` many.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from starlette.types import Receive, Scope, Send

from fuzz.strategies import TIME_LIMIT, fuzz_settings
from servicehelpers import ADMIN, AGENT_A1, READ, SUBMIT, TOKENS, bearer, with_tokens
from swarmbalancer.service import create_app
from swarmbalancer.service.auth import Role

#: A loopback base URL, as a real client of a default (loopback-only) service has.
BASE_URL = "http://127.0.0.1:8787"
#: Long-polls are bounded tightly so a generated `wait` cannot stall the fuzz.
APP = create_app(with_tokens(max_wait=0.01, heartbeat_timeout=5.0))
SCHEMA = schemathesis.openapi.from_dict(APP.openapi())

NO_TOKEN = "(none)"
UNKNOWN = "unknown-token-0123456789"
CALLERS = (ADMIN, SUBMIT, READ, AGENT_A1, NO_TOKEN, UNKNOWN)

READERS = frozenset({Role.ADMIN, Role.SUBMIT, Role.READ})
SUBMITTERS = frozenset({Role.ADMIN, Role.SUBMIT})
AGENTS = frozenset({Role.ADMIN, Role.AGENT})
EVERYONE = frozenset(Role)
#: Who may call each operation (an agent token only as its own agent): the README's roles.
ROLES: dict[tuple[str, str], frozenset[Role]] = {
    ("POST", "/v1/tasks"): SUBMITTERS,
    ("POST", "/v1/tasks/batch"): SUBMITTERS,
    ("GET", "/v1/tasks/{task_id}"): READERS,
    ("POST", "/v1/tasks/{task_id}/cancel"): SUBMITTERS,
    ("GET", "/v1/agents"): READERS,
    ("POST", "/v1/agents"): AGENTS,
    ("POST", "/v1/agents/{agent_id}/heartbeat"): AGENTS,
    ("GET", "/v1/agents/{agent_id}/next"): AGENTS,
    ("POST", "/v1/agents/{agent_id}/leases/{lease_id}"): AGENTS,
    ("DELETE", "/v1/agents/{agent_id}"): AGENTS,
    ("GET", "/health"): EVERYONE,
    ("GET", "/metrics"): READERS,
    ("GET", "/v1/report"): READERS,
    ("GET", "/v1/config"): READERS,
    ("PATCH", "/v1/config"): frozenset({Role.ADMIN}),
    ("GET", "/v1/agent-metrics"): READERS,
    ("GET", "/v1/usage"): READERS,
    ("GET", "/v1/diagnosis"): READERS,
    ("POST", "/v1/rebalance"): READERS,  # `apply=true`: admin only
    ("POST", "/v1/events/session"): READERS,
}
#: Refusals that come before the caller is known: the body limit's 413 and 415, and FastAPI's
#: 400 or 422 for a body that is not JSON text at all (read before the dependencies run).
BEFORE_AUTH = (400, 413, 415, 422)


class ModuleService:
    """`app` for the whole module: schemathesis ends an ASGI app's lifespan after every test,
    and the MCP endpoint's cannot run twice, so this wrapper declines lifespan scopes and runs
    the app's own lifespan in a task of the loop the requests arrive in, until `stop`."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._held: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("lifespan: held by ModuleService")  # read as "unsupported"
        if self._held is None:
            started = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            self._held = asyncio.create_task(self._hold(started))
            await started.wait()
        await self.app(scope, receive, send)

    async def _hold(self, started: asyncio.Event) -> None:
        async with self.app.router.lifespan_context(self.app):
            started.set()
            await self._release.wait()

    def stop(self) -> None:
        if self._loop is None or self._held is None:
            return

        async def release() -> None:
            assert self._held is not None
            self._release.set()
            await self._held

        future = asyncio.run_coroutine_threadsafe(release(), self._loop)
        future.result(timeout=10)


SERVICE = ModuleService(APP)
SCHEMA.app = SERVICE  # every call, and every probe a check sends, goes to it in-process


@pytest.fixture(scope="module", autouse=True)
def service() -> Iterator[ModuleService]:
    """The module's service, started by its first request and stopped after the last."""
    yield SERVICE
    SERVICE.stop()


def _sent_role(response: Any) -> Role | None:
    """The role of the token the request carried: schemathesis' negative cases may drop or
    mangle the Authorization header, so it is read from what was sent, not what was asked."""
    scheme, _, token = str(response.request.headers.get("Authorization", "")).partition(" ")
    spec = TOKENS.get(token) if scheme.lower() == "bearer" else None
    return None if spec is None else Role(spec["role"])


def _acts_as(case: Any) -> str | None:
    """The agent id an agent route acts as: the path's, or the registration body's."""
    agent = (case.path_parameters or {}).get("agent_id")
    if agent is None and case.path == "/v1/agents" and case.method == "POST":
        body = case.body if isinstance(case.body, dict) else {}
        agent = body.get("id")
    return agent if isinstance(agent, str) else None


def _admitted(case: Any, role: Role) -> bool:
    """Whether the role table lets `role` do what `case` asks."""
    if role not in ROLES[(case.method.upper(), case.path)]:
        return False
    if role is Role.AGENT:
        return _acts_as(case) == TOKENS[AGENT_A1]["agent"]
    if case.path == "/v1/rebalance" and str((case.query or {}).get("apply")).lower() == "true":
        return role is Role.ADMIN
    return True


def test_the_schema_lists_every_route_but_the_streams_and_the_role_table_covers_it() -> None:
    operations = {
        (method.upper(), path) for path, items in APP.openapi()["paths"].items() for method in items
    }
    assert operations == set(ROLES)
    assert all(not path.startswith("/mcp") for _, path in operations)
    assert ("GET", "/v1/events") not in operations  # never ends: tested in test_events.py


@SCHEMA.parametrize()
@SCHEMA.given(caller=st.sampled_from(CALLERS))
@fuzz_settings(ci_examples=25)
@pytest.mark.timeout(TIME_LIMIT)
def test_no_request_is_a_server_error_and_no_role_exceeds_its_rights(
    case: Any, caller: str
) -> None:
    headers = {} if caller == NO_TOKEN else bearer(caller)
    response = case.call(base_url=BASE_URL, headers=headers)
    case.validate_response(
        response,
        headers=headers,
        transport_kwargs={"base_url": BASE_URL},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
    status = response.status_code
    assert status < 500, (status, response.text)
    if case.path == "/health":
        return
    role = _sent_role(response)
    if role is None:
        assert status in (401, *BEFORE_AUTH), (status, response.text)
    elif not _admitted(case, role):
        assert status in (403, *BEFORE_AUTH), (status, response.text)
    else:
        assert status not in (401, 403), (status, response.text)
