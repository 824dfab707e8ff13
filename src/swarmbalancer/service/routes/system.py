"""Health, Prometheus metrics, the report and the live configuration."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from swarmbalancer.service.access import Admin, Reader, ServiceDep
from swarmbalancer.service.responses import GUARDED, json_errors

router = APIRouter(tags=["system"])


@router.get("/health")
async def health(service: ServiceDep) -> dict[str, Any]:
    """Liveness, without a token: the service answers and its balancer runs."""
    return {"status": "ok", "outstanding": service.balancer.outstanding}


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses=json_errors(400, 401, 403, 413, 415, 422),
)
async def metrics(service: ServiceDep, _: Reader) -> Response:
    """Prometheus text exposition."""
    return PlainTextResponse(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/report", responses=GUARDED)
async def report(service: ServiceDep, _: Reader) -> dict[str, Any]:
    """The balancer's report: the same JSON as `swarmbalancer run --json`."""
    return service.balancer.report()


@router.get("/v1/config", responses=GUARDED)
async def get_config(service: ServiceDep, _: Reader) -> dict[str, Any]:
    """The running configuration, camelCase keys."""
    return service.balancer.config.to_dict()


@router.patch("/v1/config", responses=GUARDED)
async def patch_config(
    changes: Annotated[dict[str, Any], Body()], service: ServiceDep, _: Admin
) -> dict[str, Any]:
    """Change keys of the running configuration (either spelling); the whole result is
    validated, and keys that shaped the policies at start are refused by name (422)."""
    return service.balancer.update_config(changes).to_dict()
