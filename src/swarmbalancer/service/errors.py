"""The library's errors as JSON responses: `{"detail": message, "field": name}`.

A library message starts with the field it is about (`priority: ...`), which is copied to
`field` so a client need not parse the text.
"""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from swarmbalancer.errors import (
    AgentError,
    ConfigError,
    QueueFull,
    StoreError,
    SwarmBalancerError,
    TaskRejected,
)

_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]]{0,80}):")

#: Status per library error; the first matching class wins.
_STATUS: tuple[tuple[type[SwarmBalancerError], int], ...] = (
    (ConfigError, 422),
    (TaskRejected, 422),
    (AgentError, 400),
    (QueueFull, 503),
    (StoreError, 503),
)


def error_body(message: str) -> dict[str, str | None]:
    line = " ".join(message.split())
    match = _FIELD.match(line)
    return {"detail": line, "field": match.group(1) if match else None}


async def _library_error(request: Request, exc: Exception) -> JSONResponse:
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
    return JSONResponse(error_body(str(exc)), status_code=status)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    body = error_body(exc.detail) if isinstance(exc.detail, str) else {"detail": exc.detail}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def install(app: FastAPI) -> None:
    app.add_exception_handler(SwarmBalancerError, _library_error)
    app.add_exception_handler(HTTPException, _http_error)
