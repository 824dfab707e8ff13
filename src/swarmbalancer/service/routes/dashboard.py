"""The live dashboard: the page and its assets (shipped in the package: no CDN, no external
font or script), the event stream it reads (`GET /v1/events`, server-sent events) and the
session that lets a browser open that stream when the service has tokens (service/tickets.py).

The page and its assets need no token: they hold no data. The stream takes a `read` (or
`submit`, `admin`) token in the Authorization header, as every route does, or a ticket cookie
from `POST /v1/events/session`; without tokens (a loopback-only service) it is open, as the rest
of the API is. It is left out of the OpenAPI schema: it never ends by itself.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse

from swarmbalancer.metrics.recorder import strict_json
from swarmbalancer.service.access import Bearer, Reader, ServiceDep, require
from swarmbalancer.service.auth import ANYONE, Principal, Role
from swarmbalancer.service.core import Service
from swarmbalancer.service.responses import GUARDED
from swarmbalancer.service.tickets import COOKIE

router = APIRouter()

#: The files of `service/dashboard/` the page loads, and their media types.
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
#: The page may load only its own assets and talk only to its own service.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
#: How long a browser waits before reconnecting a dropped stream (milliseconds).
RETRY_MS = 2000

_reader = require(Role.READ, Role.SUBMIT)


@functools.cache
def asset(name: str) -> bytes:
    """A file of the dashboard, read once from the installed package."""
    return (resources.files("swarmbalancer.service") / "dashboard" / name).read_bytes()


@router.get("/", include_in_schema=False)
async def page() -> Response:
    """The dashboard page (static: it reads everything from `/v1/events`)."""
    return Response(
        asset("index.html"), media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS
    )


@router.get("/dashboard/{name}", include_in_schema=False)
async def dashboard_asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(404, f"name: no dashboard asset {name!r}")
    return Response(asset(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)


@router.post("/v1/events/session", tags=["dashboard"], responses=GUARDED)
async def session(
    request: Request, response: Response, service: ServiceDep, caller: Reader
) -> dict[str, Any]:
    """A one-time ticket for `GET /v1/events`, set as an HttpOnly, SameSite=Strict cookie
    scoped to that path: a browser's EventSource cannot send the Authorization header."""
    tickets = service.tickets
    response.set_cookie(
        COOKIE,
        tickets.issue(caller),
        max_age=int(tickets.ttl),
        path="/v1/events",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return {"expires_in": tickets.ttl, "interval": service.feed.interval}


def stream_caller(request: Request, service: Service, credentials: Any) -> Principal:
    """Who opens the stream: a bearer token as for every route, else a ticket cookie."""
    if not service.settings.tokens:
        return ANYONE
    ticket = request.cookies.get(COOKIE)
    if credentials is None and ticket is not None:
        principal = service.tickets.redeem(ticket)
        if principal is None:
            raise HTTPException(
                401,
                "ticket: unknown, used or expired; POST /v1/events/session for another",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal
    return _reader(service, credentials)


@router.get("/v1/events", include_in_schema=False)
async def events(request: Request, service: ServiceDep, credentials: Bearer) -> Response:
    """Server-sent events: `history` (the chart's recent points) once, then a `frame` each
    interval, then `bye` when the service shuts down or the stream reaches its age limit."""
    stream_caller(request, service, credentials)
    return StreamingResponse(
        frames(service),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _event(kind: str, data: str, seq: int | None = None) -> bytes:
    head = f"event: {kind}\n" if seq is None else f"event: {kind}\nid: {seq}\n"
    return f"{head}data: {data}\n\n".encode()


async def frames(service: Service) -> AsyncIterator[bytes]:
    """The stream's events; it ends at the service's shutdown or after `event_max_s`, and a
    client that goes away cancels it (Starlette watches for the disconnect)."""
    feed, closing = service.feed, service.closing
    loop = asyncio.get_running_loop()
    deadline = loop.time() + service.settings.event_max_s
    feed.streams += 1
    try:
        first = feed.frame()
        yield f"retry: {RETRY_MS}\n\n".encode()
        history = json.dumps(strict_json(list(feed.history)), separators=(",", ":"))
        yield _event("history", history)
        yield _event("frame", first.text, first.seq)
        sent = first.seq
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                yield _event("bye", '{"reason":"renew"}')
                return
            try:
                async with asyncio.timeout(min(feed.period, remaining)):
                    await closing.wait()
            except TimeoutError:
                pass
            if closing.is_set():
                yield _event("bye", '{"reason":"shutdown"}')
                return
            frame = feed.frame()
            if frame.seq != sent:
                sent = frame.seq
                yield _event("frame", frame.text, frame.seq)
    finally:
        feed.streams -= 1
