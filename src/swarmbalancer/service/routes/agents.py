"""`/v1/agents`: HTTP agents register, heartbeat, long-poll for leases, report, deregister.

An agent token may act only as its own agent: every route under `/v1/agents/{agent_id}` checks
it, and a lease is found only among the leases of the agent in the path.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response

from swarmbalancer.metrics.usage import Usage
from swarmbalancer.service.access import AgentCaller, Reader, ServiceDep, own_agent
from swarmbalancer.service.core import Service
from swarmbalancer.service.hub import Lease, RemoteAgent, Report
from swarmbalancer.service.responses import GUARDED, errors
from swarmbalancer.service.schemas import AgentRegistration, OutcomeReport

router = APIRouter(prefix="/v1/agents", tags=["agents"], responses=GUARDED)

Wait = Annotated[float, Query(ge=0, description="seconds to wait for a task (bounded)")]


def _agent(service: Service, agent_id: str) -> RemoteAgent:
    agent = service.hub.get(agent_id)
    if agent is None:
        raise HTTPException(404, f"agent_id: no HTTP agent {agent_id!r} is registered")
    return agent


def _lease_view(service: Service, lease: Lease) -> dict[str, Any]:
    task = lease.task
    lb = service.balancer
    deadline = None if task.deadline is None else time.time() + (task.deadline - lb.now())
    return {
        "lease": lease.id,
        "timeout": lb.config.task_timeout,
        "heartbeat_timeout": service.settings.heartbeat_timeout,
        "task": {
            "id": task.id,
            "payload": task.payload,
            "attempt": task.attempt,
            "priority": task.priority.name.lower(),
            "tenant": task.tenant,
            "deadline": deadline,
            "estimate": task.estimate,
        },
    }


@router.get("")
async def list_agents(service: ServiceDep, _: Reader) -> dict[str, Any]:
    """Every agent with its load."""
    return {"agents": service.agents()}


@router.post("", status_code=201, responses=errors(400))
async def register(
    body: AgentRegistration, service: ServiceDep, caller: AgentCaller
) -> dict[str, Any]:
    """Register an HTTP agent; it then long-polls `next` for its tasks."""
    own_agent(caller, body.id)
    service.register(body)
    return {"id": body.id, "heartbeat_timeout": service.settings.heartbeat_timeout}


@router.post("/{agent_id}/heartbeat", responses=errors(404))
async def heartbeat(agent_id: str, service: ServiceDep, caller: AgentCaller) -> dict[str, Any]:
    """Keep the agent's leases alive while it works without polling."""
    own_agent(caller, agent_id)
    agent = _agent(service, agent_id)
    agent.touch()
    return {"id": agent_id, "leases": len(agent.leases)}


@router.get(
    "/{agent_id}/next",
    response_model=None,
    responses={**errors(404), 204: {"description": "No task came within `wait` seconds."}},
)
async def next_task(
    agent_id: str, service: ServiceDep, caller: AgentCaller, wait: Wait = 0
) -> dict[str, Any] | Response:
    """The agent's next task as a lease (200), or 204 when none came within `wait` seconds."""
    own_agent(caller, agent_id)
    agent = _agent(service, agent_id)
    lease = await agent.next_lease(min(wait, service.settings.max_wait))
    if lease is None:
        return Response(status_code=204)
    return _lease_view(service, lease)


@router.post("/{agent_id}/leases/{lease_id}", responses=errors(404))
async def report(
    agent_id: str, lease_id: str, body: OutcomeReport, service: ServiceDep, caller: AgentCaller
) -> dict[str, Any]:
    """Report a lease's outcome: `result`, or `error` (with `retry_after`, `retryable`)."""
    own_agent(caller, agent_id)
    agent = _agent(service, agent_id)
    outcome = Report(body.result, body.error, body.retry_after, body.retryable)
    lease = agent.leases.get(lease_id)
    if not agent.report(lease_id, outcome):
        raise HTTPException(
            404,
            f"lease_id: agent {agent_id!r} holds no lease {lease_id!r} "
            "(unknown, already reported, expired or cancelled)",
        )
    if body.usage is not None and lease is not None:
        usage = Usage(**body.usage.model_dump())
        service.balancer.coordinator.recorder.usage_reported(agent_id, lease.task.tenant, usage)
    return {"lease": lease_id, "accepted": True}


@router.delete("/{agent_id}", responses=errors(400))
async def deregister(agent_id: str, service: ServiceDep, caller: AgentCaller) -> dict[str, Any]:
    """Route nothing more to the agent; its queued tasks move to the others."""
    own_agent(caller, agent_id)
    service.deregister(agent_id)
    return {"id": agent_id, "removed": True}
