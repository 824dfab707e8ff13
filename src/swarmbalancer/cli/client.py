"""A small synchronous client of a live service, for the seed's commands: every failure (no
answer, a refusal, a non-JSON reply) becomes a `ServiceError` with one line naming it."""

from __future__ import annotations

import os
from typing import Any

import httpx

from swarmbalancer.errors import SwarmBalancerError

DEFAULT_URL = "http://127.0.0.1:8787"
URL_ENV = "SWARMBALANCER_URL"
TOKEN_ENV = "SWARMBALANCER_TOKEN"


class ServiceError(SwarmBalancerError):
    """The service could not be reached, or refused or failed a request."""


class ServiceClient:
    """Calls one service, with an optional bearer token; `timeout` bounds every request."""

    def __init__(self, url: str | None, token: str | None, *, timeout: float = 10.0) -> None:
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        token = token or os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=_params(params))

    def post(self, path: str, **params: Any) -> Any:
        return self._call("POST", path, params=_params(params))

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("PATCH", path, json=body)

    def text(self, path: str) -> str:
        return str(self._send("GET", path).text)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = self._send(method, path, **kwargs)
        try:
            return reply.json()
        except ValueError:
            raise ServiceError(f"{method} {path}: the reply is not JSON") from None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            reply = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(f"{self.url}: no answer ({type(exc).__name__}: {exc})") from None
        if reply.status_code >= 400:
            raise ServiceError(f"{method} {path}: {reply.status_code} {_detail(reply)}")
        return reply


def _params(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v).lower() if isinstance(v, bool) else v)
        for k, v in params.items()
        if v is not None
    }


def _detail(reply: httpx.Response) -> str:
    """The error's `detail` (FastAPI's 422 list flattened to `loc: msg`), else the text."""
    try:
        detail = reply.json().get("detail")
    except (ValueError, AttributeError):
        return reply.text[:200]
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail
        )
    return str(detail)
