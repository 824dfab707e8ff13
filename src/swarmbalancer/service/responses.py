"""The API's error responses as the OpenAPI schema documents them, so a client (or schemathesis)
can rely on every status a route returns: `{"detail": message, "field": name}` for the
service's own errors, FastAPI's list of field errors for a body or query that fails validation.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorBody(BaseModel):
    """An error of the service: the message, and the field it names (null when none)."""

    detail: str
    field: str | None


class FieldError(BaseModel):
    """One field that failed validation: where (`loc`), why (`msg`) and the kind (`type`)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrors(BaseModel):
    """FastAPI's 422 for a request that does not match its declared shape."""

    detail: list[FieldError]


Responses = dict[int | str, dict[str, Any]]

_DESCRIPTIONS = {
    400: "The body could not be read as JSON text, or the request names something it may "
    "not (an agent error, naming the field).",
    401: "No bearer token, or one the service does not know.",
    403: "The token's role may not do this (or an agent token acts as another agent).",
    404: "The task, agent or lease named is not known (the field names which).",
    413: "The request body is larger than the service's limit.",
    415: "The request body is not JSON.",
    503: "The balancer cannot take the work now (its queue is full, or its store failed).",
}


def errors(*codes: int) -> Responses:
    """The `responses` of a route that may answer with each of `codes`."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


def json_errors(*codes: int) -> Responses:
    """`errors(*codes)` for a route whose own responses are not JSON (`/metrics`): the error
    bodies still are, so their media type is given rather than taken from the route."""
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    return {code: {"description": _DESCRIPTIONS[code], "content": content} for code in codes}


_DESCRIPTIONS[422] = (
    "A field is invalid: FastAPI's field list, or the service's own error naming the field."
)


#: Every route: the body limit answers before any route does, and a 422 is either kind.
EVERY_ROUTE: Responses = {
    **errors(400, 413, 415),
    422: {"model": ValidationErrors | ErrorBody, "description": _DESCRIPTIONS[422]},
}
#: A route behind the tokens.
GUARDED: Responses = errors(401, 403)
