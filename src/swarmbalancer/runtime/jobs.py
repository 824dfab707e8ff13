"""`Job`: one item of a batch (`Balancer.submit_many`, `Balancer.map`) with its own keywords."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from swarmbalancer.errors import TaskRejected
from swarmbalancer.model import Priority

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
