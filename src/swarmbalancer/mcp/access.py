"""Who is calling a tool: the service's bearer tokens over HTTP, the local user over stdio.

Over HTTP the `/mcp` endpoint is wrapped by `BearerGate`, which refuses a request without a
known token (401) or with an agent token (403: an agent token serves one agent, never tools)
and records the caller in the ASGI scope; each tool then checks the role its action needs.
Over stdio there is no request: the caller is whoever started the process, an admin.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from starlette.types import ASGIApp, Receive, Scope, Send

from swarmbalancer.service.auth import ANYONE, Principal, Role, TokenTable

#: The ASGI scope key holding the caller's `Principal`.
PRINCIPAL = "swarmbalancer.principal"


def caller(ctx: Context[Any, Any]) -> Principal:
    """The caller of this tool call; a request that reached a tool without passing the gate
    is refused rather than trusted."""
    request = ctx.request_context.request
    if request is None:
        return ANYONE
    scope = getattr(request, "scope", None)
    principal = scope.get(PRINCIPAL) if isinstance(scope, dict) else None
    if not isinstance(principal, Principal):
        raise ToolError("forbidden: this request carries no checked token")
    return principal


def require(ctx: Context[Any, Any], action: str, *roles: Role) -> None:
    """Refuse `action` unless the caller has one of `roles` or is an admin."""
    allowed = frozenset(roles) | {Role.ADMIN}
    role = caller(ctx).role
    if role not in allowed:
        needed = ", ".join(sorted(r.value for r in allowed))
        raise ToolError(f"forbidden: role {role.value} may not {action} (needs {needed})")


class BearerGate:
    """ASGI wrapper: a known bearer token (any role but agent) or no entry."""

    def __init__(self, app: ASGIApp, tokens: TokenTable) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        principal: Principal | None = ANYONE
        if self.tokens:
            principal = self.tokens.lookup(_bearer(scope) or "")
            if principal is None:
                await _refuse(send, 401, "a known bearer token is required")
                return
            if principal.role is Role.AGENT:
                await _refuse(send, 403, "role agent may not call tools")
                return
        scope[PRINCIPAL] = principal
        await self.app(scope, receive, send)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail, "field": None}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
