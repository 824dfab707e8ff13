"""What the seed's commands read and do on a live swarm: per-agent figures, token usage, the
bottleneck diagnosis, and a rebalancing cycle on demand (plan or apply)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from swarmbalancer.metrics.diagnosis import COMPONENTS, diagnose
from swarmbalancer.service.access import Reader, ServiceDep
from swarmbalancer.service.auth import Role
from swarmbalancer.service.responses import GUARDED, errors

router = APIRouter(prefix="/v1", tags=["insight"], responses=GUARDED)


@router.get("/agent-metrics", responses=errors(404))
async def agent_metrics(
    service: ServiceDep,
    _: Reader,
    agent: Annotated[str | None, Query(max_length=200, description="one agent id")] = None,
    type: Annotated[
        str | None, Query(max_length=200, description="agents carrying this tag")
    ] = None,
) -> dict[str, Any]:
    """Per-agent figures now: learned speed and error rate, load, counts, breaker, tokens."""
    snapshot = service.snapshot()
    usage = (snapshot.report["token_usage"] or {}).get("per_agent", {})
    rows = [
        {**a.to_dict(), "token_usage": usage.get(a.id)}
        for a in snapshot.agents
        if (agent is None or a.id == agent) and (type is None or type in a.tags)
    ]
    if agent is not None and not rows:
        raise HTTPException(404, f"agent: no agent {agent!r} matches")
    return {"agents": rows}


@router.get("/usage")
async def usage(service: ServiceDep, _: Reader) -> dict[str, Any]:
    """Token usage in total and per agent, tenant and model; null before any was reported."""
    return {"token_usage": service.balancer.report()["token_usage"]}


@router.get("/diagnosis")
async def diagnosis(
    service: ServiceDep,
    _: Reader,
    component: Annotated[
        str, Query(description=f"one of {', '.join(COMPONENTS)}", max_length=100)
    ] = "all",
) -> dict[str, Any]:
    """Bottlenecks, most severe first, each with its evidence and a setting to try."""
    findings = diagnose(service.snapshot(), component)
    return {"component": component, "findings": [f.to_dict() for f in findings]}


@router.post("/rebalance")
async def rebalance(
    service: ServiceDep,
    caller: Reader,
    apply: Annotated[bool, Query(description="move the tasks (admin); else only plan")] = False,
) -> dict[str, Any]:
    """One rebalancing cycle now: the migrations it would make, or (`apply`) made."""
    if apply and caller.role is not Role.ADMIN:
        raise HTTPException(403, "apply: only an admin token may move tasks")
    lb = service.balancer
    migrations = lb.rebalance(apply=apply)
    return {
        "applied": apply,
        "enabled": lb.config.rebalance_enabled,
        "migrations": [
            {"task_id": m.task_id, "source": m.source, "target": m.target} for m in migrations
        ],
    }
