"""Builds the configured router; the one place that maps strategy names to classes."""

from __future__ import annotations

from swarmbalancer.config import BalancerConfig
from swarmbalancer.policies.adaptive import Adaptive
from swarmbalancer.policies.routing import (
    LeastConnections,
    Locality,
    PowerOfTwo,
    RandomChoice,
    RoundRobin,
    Router,
    SmoothWeighted,
)

_SIMPLE: dict[str, type[Router]] = {
    cls.name: cls
    for cls in (RoundRobin, SmoothWeighted, LeastConnections, PowerOfTwo, RandomChoice, Locality)
}


def make_router(config: BalancerConfig) -> Router:
    """A fresh router for `config.strategy`."""
    if config.strategy == "adaptive":
        return Adaptive(
            config.objective_weights,
            exploration=config.exploration,
            max_candidates=config.adaptive_candidates,
            prefetch=config.prefetch,
        )
    return _SIMPLE[config.strategy]()
