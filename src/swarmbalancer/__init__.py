"""swarmbalancer: spread tasks across a swarm of agents so that none is overloaded, the important
work goes first, deadlines hold, failing agents are cut out, and every decision is measured.

Public names load on first use (PEP 562), so `import swarmbalancer` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swarmbalancer.clock import Clock, ManualClock, MonotonicClock
    from swarmbalancer.cluster.client import Client
    from swarmbalancer.config import BalancerConfig, load_config
    from swarmbalancer.coordinator import Assignment, Coordinator, Outcome
    from swarmbalancer.errors import (
        AgentError,
        CircuitOpenError,
        ConfigError,
        LeaseHeld,
        NonRetryable,
        NotRunning,
        QueueFull,
        RetryAfter,
        StoreError,
        SwarmBalancerError,
        TaskFailed,
        TaskRejected,
        WorkloadError,
    )
    from swarmbalancer.metrics.usage import Usage
    from swarmbalancer.model import AgentSpec, AgentState, Priority, Task, TaskState
    from swarmbalancer.native import compiled
    from swarmbalancer.policies.breaker import BreakerSettings, BreakerState
    from swarmbalancer.runtime.balancer import Balancer
    from swarmbalancer.runtime.guard import CircuitBreaker
    from swarmbalancer.runtime.handles import TaskHandle
    from swarmbalancer.runtime.jobs import Job
    from swarmbalancer.store import MemoryStore, SqliteStore, Store, TaskRecord
    from swarmbalancer.usage import report_usage

__version__ = "0.1.0"

_WHERE = {
    "Client": "cluster.client",
    "Clock": "clock",
    "ManualClock": "clock",
    "MonotonicClock": "clock",
    "BalancerConfig": "config",
    "load_config": "config",
    "Assignment": "coordinator",
    "Coordinator": "coordinator",
    "Outcome": "coordinator",
    "AgentError": "errors",
    "CircuitOpenError": "errors",
    "ConfigError": "errors",
    "NonRetryable": "errors",
    "NotRunning": "errors",
    "QueueFull": "errors",
    "RetryAfter": "errors",
    "StoreError": "errors",
    "LeaseHeld": "errors",
    "SwarmBalancerError": "errors",
    "TaskFailed": "errors",
    "TaskRejected": "errors",
    "WorkloadError": "errors",
    "AgentSpec": "spec",
    "AgentState": "model",
    "Priority": "model",
    "Task": "model",
    "TaskState": "model",
    "BreakerSettings": "policies.breaker",
    "BreakerState": "policies.breaker",
    "Balancer": "runtime.balancer",
    "CircuitBreaker": "runtime.guard",
    "TaskHandle": "runtime.handles",
    "Job": "runtime.jobs",
    "MemoryStore": "store",
    "SqliteStore": "store",
    "Store": "store",
    "TaskRecord": "store",
    "Usage": "metrics.usage",
    "compiled": "native",
    "report_usage": "usage",
}

__all__ = [
    "AgentError",
    "AgentSpec",
    "AgentState",
    "Assignment",
    "Balancer",
    "BalancerConfig",
    "BreakerSettings",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "Client",
    "Clock",
    "ConfigError",
    "Coordinator",
    "Job",
    "LeaseHeld",
    "ManualClock",
    "MemoryStore",
    "MonotonicClock",
    "NonRetryable",
    "NotRunning",
    "Outcome",
    "Priority",
    "QueueFull",
    "RetryAfter",
    "SqliteStore",
    "Store",
    "StoreError",
    "SwarmBalancerError",
    "Task",
    "TaskFailed",
    "TaskHandle",
    "TaskRecord",
    "TaskRejected",
    "TaskState",
    "Usage",
    "WorkloadError",
    "__version__",
    "compiled",
    "load_config",
    "report_usage",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'swarmbalancer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"swarmbalancer.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
