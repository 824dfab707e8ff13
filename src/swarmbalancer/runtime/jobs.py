"""`Job`: one item of a batch (`Balancer.submit_many`, `Balancer.map`) with its own keywords, and
what `Balancer` and `Client` share to turn submit's arguments into checked tasks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from swarmbalancer.errors import TaskRejected
from swarmbalancer.model import Priority, Task, plain_task

#: submit's keywords, in the order they are documented.
FIELDS: tuple[str, ...] = (
    "priority",
    "tenant",
    "deadline",
    "within",
    "estimate",
    "affinity",
    "region",
    "idempotency_key",
    "task_id",
    "max_retries",
    "period",
)


#: submit's keywords but `priority`, each at its default: a plain task.
UNSET: tuple[None, ...] = (None,) * (len(FIELDS) - 1)


@dataclass(frozen=True, slots=True)
class Job:
    """A payload and submit's keywords for it; a field left None takes the batch's keyword.

    `Job(payload, priority="high", estimate=0.2)` in `submit_many([...], tenant="t1")` is
    submitted as `submit(payload, priority="high", estimate=0.2, tenant="t1")`. A job's
    `deadline` replaces the batch's `within` and the other way round.
    """

    payload: Any = None
    priority: Priority | str | None = None
    tenant: str | None = None
    deadline: float | None = None
    within: float | None = None
    estimate: float | None = None
    affinity: str | Iterable[str] | None = None
    region: str | None = None
    idempotency_key: str | None = None
    task_id: str | None = None
    max_retries: int | None = None
    period: float | None = None


def merged(item: Any, shared: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The payload and keywords of one batch item: a Job's own fields over the shared ones."""
    if not isinstance(item, Job):
        return item, shared
    fields = dict(shared)
    for name in FIELDS:
        value = getattr(item, name)
        if value is not None:
            fields[name] = value
            if name == "deadline":
                fields.pop("within", None)
            elif name == "within":
                fields.pop("deadline", None)
    return item.payload, fields


def check_keywords(keywords: dict[str, Any]) -> None:
    """Refuse a keyword submit does not take, naming it."""
    for name in keywords:
        if name not in FIELDS:
            raise TaskRejected(f"{name}: not a keyword of submit (one of {', '.join(FIELDS)})")


def make_task(
    payload: Any,
    now: float,
    *,
    new_id: Callable[[], str],
    default_retries: int,
    clock: str,
    relative_hint: str,
    priority: Priority | str | None = None,
    tenant: str | None = None,
    deadline: float | None = None,
    within: float | None = None,
    estimate: float | None = None,
    affinity: str | Iterable[str] | None = None,
    region: str | None = None,
    idempotency_key: str | None = None,
    task_id: str | None = None,
    max_retries: int | None = None,
    period: float | None = None,
) -> Task:
    """A validated task (not yet accepted); every bad field raises TaskRejected naming it.

    Without a `task_id`, `new_id()` makes one; without `max_retries`, `default_retries` (already
    checked) applies. `clock` says what `now` and an absolute `deadline` are read on and
    `relative_hint` how to give a relative one, for the message refusing a past deadline.
    """
    optional = (tenant, deadline, within, estimate, affinity, region)
    if (priority is None or priority == "normal") and (
        (*optional, idempotency_key, task_id, max_retries, period) == UNSET
    ):  # a plain task: nothing to validate but the payload, which the store checks
        return plain_task(new_id(), payload, default_retries, now)
    task = Task.create(
        payload,
        now=now,
        priority="normal" if priority is None else priority,
        tenant=tenant,
        deadline=deadline,
        within=within,
        estimate=estimate,
        affinity=affinity,
        region=region,
        idempotency_key=idempotency_key,
        task_id=new_id() if task_id is None else task_id,
        max_retries=default_retries if max_retries is None else max_retries,
        period=period,
    )
    if deadline is not None and deadline < now:
        raise TaskRejected(
            f"deadline: {deadline!r} is already past ({clock} {now:.6f}); {relative_hint}"
        )
    return task


def check_unique_ids(tasks: list[Task]) -> None:
    """Refuse a batch naming one task id twice, naming it."""
    if len({t.id for t in tasks}) == len(tasks):
        return
    seen: set[str] = set()
    for t in tasks:
        if t.id in seen:
            raise TaskRejected(f"task_id: {t.id!r} appears twice in the batch")
        seen.add(t.id)
