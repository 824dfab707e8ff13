"""`/v1/tasks`: submit one or a batch, read a task's status and result (long-poll), cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from swarmbalancer.service.access import Reader, ServiceDep, Submitter
from swarmbalancer.service.book import task_view
from swarmbalancer.service.responses import GUARDED, errors
from swarmbalancer.service.schemas import BatchRequest, SubmitRequest, TaskOptions

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=GUARDED)

Wait = Annotated[float, Query(ge=0, description="seconds to wait for the task to end (bounded)")]


def _not_found(task_id: str) -> HTTPException:
    return HTTPException(404, f"task_id: no task {task_id!r} is known")


@router.post("", status_code=201, responses=errors(503))
async def submit(body: SubmitRequest, service: ServiceDep, _: Submitter) -> dict[str, Any]:
    """Submit one task; a repeated `idempotency_key` or `task_id` returns the first task."""
    options = TaskOptions(**body.model_dump(exclude={"payload"}))
    handle = await service.submit(body.payload, options)
    return task_view(handle)


@router.post("/batch", status_code=201, responses=errors(503))
async def submit_batch(body: BatchRequest, service: ServiceDep, _: Submitter) -> dict[str, Any]:
    """Submit a batch, all or nothing; the tasks come back in the items' order."""
    handles = await service.submit_many(body)
    return {"tasks": [task_view(h) for h in handles]}


@router.get("/{task_id}", responses=errors(404))
async def status(task_id: str, service: ServiceDep, _: Reader, wait: Wait = 0) -> dict[str, Any]:
    """A task's state and, once it ended, its result or error; `wait` long-polls for the end."""
    view = await service.wait_task(task_id, wait)
    if view is None:
        raise _not_found(task_id)
    return view


@router.post("/{task_id}/cancel", responses=errors(404))
async def cancel(task_id: str, service: ServiceDep, _: Submitter) -> dict[str, Any]:
    """Cancel a task: a waiting one leaves its queue, a running one's lease is withdrawn."""
    view = service.cancel(task_id)
    if view is None:
        raise _not_found(task_id)
    return view
