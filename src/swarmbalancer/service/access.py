"""FastAPI dependencies: the service of a request, and the caller's role checked per route."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from swarmbalancer.service.auth import ANYONE, Principal, Role
from swarmbalancer.service.core import Service

_bearer = HTTPBearer(auto_error=False, description="a token of the service's token file")


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def require(*roles: Role) -> Callable[..., Principal]:
    """A dependency admitting `roles` and admin: no or an unknown token is 401, another role
    403."""
    allowed = frozenset(roles) | {Role.ADMIN}
    needed = ", ".join(sorted(r.value for r in allowed))

    def caller(
        service: Annotated[Service, Depends(get_service)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        tokens = service.settings.tokens
        if not tokens:
            return ANYONE
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise HTTPException(401, "a bearer token is required", headers=challenge)
        principal = tokens.lookup(credentials.credentials)
        if principal is None:
            raise HTTPException(401, "unknown token", headers=challenge)
        if principal.role not in allowed:
            raise HTTPException(403, f"role {principal.role.value} may not do this ({needed})")
        return principal

    return caller


def own_agent(principal: Principal, agent_id: str) -> None:
    """An agent token acts only as its own agent (admin as any)."""
    if not principal.may_act_as(agent_id):
        raise HTTPException(403, f"this token may not act as agent {agent_id!r}")


ServiceDep = Annotated[Service, Depends(get_service)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
Reader = Annotated[Principal, Depends(require(Role.READ, Role.SUBMIT))]
Submitter = Annotated[Principal, Depends(require(Role.SUBMIT))]
AgentCaller = Annotated[Principal, Depends(require(Role.AGENT))]
Admin = Annotated[Principal, Depends(require())]
