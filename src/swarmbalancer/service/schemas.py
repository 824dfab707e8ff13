"""Request bodies of the API: strict (unknown fields are a 422 naming them), JSON only.

Values are checked again by the library (`submit`, `add_agent`, `load_config`), whose errors
become 422s naming the field; these models only give the OpenAPI schema its shape and bound
what can be sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Priority = Literal["critical", "high", "normal", "low", "background"]
_Id = Field(min_length=1, max_length=200)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TaskOptions(_Body):
    """Submit's keywords. `deadline` is Unix time (seconds); `within` is relative."""

    priority: Priority | None = None
    tenant: str | None = Field(None, max_length=200)
    deadline: float | None = None
    within: float | None = None
    estimate: float | None = None
    affinity: list[str] | None = Field(None, max_length=1000)
    region: str | None = Field(None, max_length=200)
    idempotency_key: str | None = Field(None, max_length=200)
    task_id: str | None = Field(None, min_length=1, max_length=200)
    max_retries: int | None = None
    period: float | None = None


class SubmitRequest(TaskOptions):
    """One task: its JSON payload and submit's keywords."""

    payload: Any = None


class BatchRequest(_Body):
    """A batch, all or nothing: `options` apply to every item, an item's own fields win."""

    items: list[SubmitRequest] = Field(min_length=1)
    options: TaskOptions = TaskOptions()


class AgentRegistration(_Body):
    """An HTTP agent: how many tasks it runs at once and what the router may know of it."""

    id: str = _Id
    capacity: int = Field(1, ge=1, le=10_000)
    weight: float = Field(1.0, gt=0)
    region: str | None = Field(None, max_length=200)
    cost: float = Field(0.0, ge=0)
    speed_hint: float | None = Field(None, gt=0)
    tags: list[str] = Field(default_factory=list, max_length=100)


class TokenUsage(_Body):
    """What an attempt consumed, summed per agent, tenant and model (`GET /v1/usage`)."""

    input_tokens: int | None = Field(None, ge=0)
    output_tokens: int | None = Field(None, ge=0)
    model: str | None = Field(None, max_length=200)
    cost: float | None = Field(None, ge=0)


class OutcomeReport(_Body):
    """An attempt's outcome: `result`, or `error` (then `retry_after` rests the agent that
    long, and `retryable: false` fails the task without retries)."""

    result: Any = None
    error: str | None = Field(None, max_length=4096)
    retry_after: float | None = Field(None, ge=0)
    retryable: bool = True
    usage: TokenUsage | None = None
