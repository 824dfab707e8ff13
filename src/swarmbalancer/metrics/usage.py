"""Token usage: what tasks consumed (input and output tokens, model, cost), summed per agent,
tenant and model for the report's `token_usage` key (docs/metrics.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from swarmbalancer.errors import TaskRejected

#: Distinct model names kept apart; later ones are summed under `OTHER` (bounded memory).
MAX_MODELS = 100
OTHER = "other"
#: Longest model name accepted.
MAX_MODEL_CHARS = 200


@dataclass(frozen=True, slots=True)
class Usage:
    """One report of what an attempt consumed; every field optional."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    cost: float | None = None


def check_usage(usage: Usage) -> Usage:
    """`usage` if every field is valid, else a TaskRejected naming the field."""
    for name in ("input_tokens", "output_tokens"):
        value = getattr(usage, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TaskRejected(f"{name}: must be an integer, got {value!r}")
        if value is not None and value < 0:
            raise TaskRejected(f"{name}: must be >= 0, got {value!r}")
    cost = usage.cost
    if cost is not None and (
        isinstance(cost, bool)
        or not isinstance(cost, int | float)
        or not math.isfinite(cost)
        or cost < 0
    ):
        raise TaskRejected(f"cost: must be a finite number >= 0, got {cost!r}")
    model = usage.model
    if model is not None and (not isinstance(model, str) or not 0 < len(model) <= MAX_MODEL_CHARS):
        raise TaskRejected(f"model: must be a string of 1 to {MAX_MODEL_CHARS} characters")
    return usage


@dataclass(slots=True)
class _Sum:
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    costed: bool = False  # some report carried a cost
    reports: int = 0

    def add(self, usage: Usage) -> None:
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        if usage.cost is not None:
            self.cost += usage.cost
            self.costed = True
        self.reports += 1

    def view(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost if self.costed else None,
            "reports": self.reports,
        }


class UsageTally:
    """Sums of usage reports: in total and per agent, per tenant and per model."""

    def __init__(self) -> None:
        self._total = _Sum()
        self._agents: dict[str, _Sum] = {}
        self._tenants: dict[str, _Sum] = {}
        self._models: dict[str, _Sum] = {}

    def add(self, agent_id: str, tenant: str | None, usage: Usage) -> None:
        self._total.add(usage)
        self._agents.setdefault(agent_id, _Sum()).add(usage)
        if tenant is not None:
            self._tenants.setdefault(tenant, _Sum()).add(usage)
        model = usage.model or "unknown"
        if model not in self._models and len(self._models) >= MAX_MODELS:
            model = OTHER
        self._models.setdefault(model, _Sum()).add(usage)

    def report(self) -> dict[str, Any] | None:
        """The `token_usage` key: null until some usage was reported."""
        if not self._total.reports:
            return None
        return {
            **self._total.view(),
            "per_agent": {k: v.view() for k, v in sorted(self._agents.items())},
            "per_tenant": {k: v.view() for k, v in sorted(self._tenants.items())},
            "per_model": {k: v.view() for k, v in sorted(self._models.items())},
        }
