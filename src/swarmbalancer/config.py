"""Balancer configuration: one flat model whose keys users write in camelCase or snake_case.

Unknown keys and bad values raise `ConfigError` naming the key, never pass silently. Durations are
seconds; a string with a unit (`"500ms"`, `"5s"`, `"2m"`) is accepted too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from swarmbalancer.documents import DocumentError, loads_json, read_text
from swarmbalancer.errors import ConfigError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(value: Any) -> Any:
    """A duration string such as '500ms', '5s' or '2m' in seconds; other values pass through."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration such as 0.5, '500ms', '5s' or '2m'")
        return float(match.group(1)) * _UNITS[match.group(2) or "s"]
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
#: Periodic checks (aging, rebalancing) run at most 1,000 times a second: a shorter interval costs
#: more than it balances, and near 0 the next check would land on the same instant for ever.
Interval = Annotated[float, BeforeValidator(parse_duration), Field(ge=0.001)]

Strategy = Literal[
    "round_robin", "weighted", "least_connections", "power_of_two", "random", "locality", "adaptive"
]
STRATEGIES: tuple[str, ...] = Strategy.__args__  # type: ignore[attr-defined]
Discipline = Literal["fifo", "edf", "cfs", "wfq"]
VictimSelection = Literal["heaviest", "random", "locality"]
LevelName = Literal["critical", "high", "normal", "low"]


class _Strict(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
        allow_inf_nan=False,
    )


class LevelWeights(_Strict):
    """Dispatch shares of the four weighted levels under saturation (any positive scale)."""

    critical: float = Field(40.0, gt=0)
    high: float = Field(30.0, gt=0)
    normal: float = Field(20.0, gt=0)
    low: float = Field(10.0, gt=0)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.critical, self.high, self.normal, self.low)


class ObjectiveWeights(_Strict):
    """Weights of the adaptive router's objectives (see docs/configuration.md for the score)."""

    latency: float = Field(1.0, ge=0)
    utilization: float = Field(0.0, ge=0)
    balance: float = Field(0.0, ge=0)
    cost: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> ObjectiveWeights:
        if self.latency + self.utilization + self.balance + self.cost <= 0:
            raise ValueError("at least one objective weight must be > 0")
        return self


class BalancerConfig(_Strict):
    """Every knob of the balancer, with the defaults a production swarm starts from."""

    # routing
    strategy: Strategy = "adaptive"
    threshold: float = Field(0.8, gt=0)
    seed: int = Field(0, ge=-(2**63), le=2**64 - 1)
    objective_weights: ObjectiveWeights = ObjectiveWeights()
    exploration: float = Field(0.02, ge=0, le=1)
    ewma_alpha: float = Field(0.2, gt=0, le=1)
    adaptive_candidates: int = Field(16, ge=2)

    # work stealing
    steal_enabled: bool = True
    steal_threshold: int = Field(5, ge=0)
    steal_percentage: float = Field(0.5, gt=0, le=1)
    victim_selection: VictimSelection = "heaviest"
    locality_aware: bool = True
    max_moves: int = Field(2, ge=0)

    # queues
    level_weights: LevelWeights = LevelWeights()
    discipline: Discipline = "fifo"
    tenant_weights: dict[str, float] = Field(default_factory=dict)
    aging_interval: Interval = 5.0
    aging_boost: int = Field(1, ge=0)
    aging_ceiling: LevelName = "high"
    feedback: bool = True
    max_queue_size: int | None = Field(None, ge=1)
    queue_full: Literal["wait", "raise"] = "wait"
    prefetch: int = Field(0, ge=0, le=1000)
    park_timeout: PositiveDuration | None = 60.0

    # rebalancing
    rebalance_enabled: bool = True
    check_interval: Interval = 5.0
    migration_threshold: float = Field(0.3, gt=0)
    cooldown_period: Duration = 30.0
    max_migrations: int = Field(5, ge=0)

    # circuit breakers
    breaker_enabled: bool = True
    failure_threshold: int = Field(5, ge=1)
    success_threshold: int = Field(3, ge=1)
    timeout: PositiveDuration = 30.0
    failure_rate_threshold: float | None = Field(None, gt=0, le=1)
    sliding_window_size: int = Field(20, ge=1)
    minimum_calls: int = Field(10, ge=1)
    slow_call_duration: PositiveDuration | None = None
    slow_call_rate_threshold: float = Field(1.0, gt=0, le=1)
    half_open_max_calls: int | None = Field(None, ge=1)
    panic_threshold: float = Field(0.5, ge=0, le=1)
    slow_start: Duration = 5.0

    # retries and timeouts
    max_retries: int = Field(2, ge=0, le=1000)
    retry_backoff: Duration = 0.05
    retry_backoff_max: Duration = 2.0
    task_timeout: PositiveDuration | None = None
    non_retryable: list[str] = Field(default_factory=list)

    # metrics
    latency_samples: int = Field(200_000, ge=1, le=10_000_000)

    # durable stores
    result_retention: Duration = 86_400.0
    max_payload_bytes: int = Field(1 << 20, ge=1)

    @field_validator("strategy", "discipline", "victim_selection", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower().replace("-", "_") if isinstance(value, str) else value

    @field_validator("tenant_weights")
    @classmethod
    def _positive_weights(cls, value: dict[str, float]) -> dict[str, float]:
        for tenant, weight in value.items():
            if weight <= 0:
                raise ValueError(f"weight of tenant {tenant!r} must be > 0")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> BalancerConfig:
        if self.minimum_calls > self.sliding_window_size:
            raise ValueError("minimumCalls must not exceed slidingWindowSize")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The configuration as users write it: camelCase keys, JSON values."""
        return self.model_dump(by_alias=True, mode="json")

    def updated(self, changes: dict[str, Any]) -> BalancerConfig:
        """A copy with `changes` applied and the whole result validated again."""
        return load_config({**self.to_dict(), **camel_keys(changes)})


def camel_keys(data: dict[Any, Any]) -> dict[str, Any]:
    """Keys in camelCase; a non-string key, or a key given in both spellings, is an error."""
    normalised: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            shown = repr(key) if isinstance(key, int | float | bool) else type(key).__name__
            raise ConfigError(f"config: key {shown} is not a string (keys must be strings)")
        camel = canonical_key(key)
        if camel in spelled:
            raise ConfigError(f"{_name(key)}: given twice (also as {_name(spelled[camel])})")
        spelled[camel] = key
        normalised[camel] = value
    return normalised


def _name(key: str | int) -> str:
    """A key as errors show it: as written when plain, else quoted (so it stays on one line)."""
    if isinstance(key, int) or (key and key.isprintable() and key.strip() == key):
        return str(key)
    return repr(key)


def canonical_key(key: str) -> str:
    """The camelCase spelling of a configuration key (`steal_threshold` -> `stealThreshold`)."""
    return to_camel(key) if "_" in key else key


def _error_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(_name(p) for p in err["loc"]) or "config"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def load_config(
    source: BalancerConfig | dict[str, Any] | str | Path | None = None,
) -> BalancerConfig:
    """Build a config from an object, a dict, a JSON string or a JSON file path.

    Both `stealThreshold` and `steal_threshold` are accepted; giving the same key both ways is an
    error, as is any unknown key or invalid value.
    """
    if source is None:
        return BalancerConfig()
    if isinstance(source, BalancerConfig):
        return source
    if isinstance(source, Path):
        source = _read_json(source, str(source))
    elif isinstance(source, str):
        source = _read_json(source, "config")
    if not isinstance(source, dict):
        raise ConfigError(f"config: expected a JSON object, got {type(source).__name__}")
    normalised = camel_keys(source)
    try:
        return BalancerConfig.model_validate(normalised)
    except ValidationError as exc:
        raise ConfigError(_error_message(exc)) from None


def _read_json(source: str | Path, where: str) -> Any:
    """JSON text, or a file of it, read within the bounds of `swarmbalancer.documents`."""
    try:
        return loads_json(read_text(source) if isinstance(source, Path) else source)
    except DocumentError as exc:
        raise ConfigError(f"{where}: {exc}") from None
