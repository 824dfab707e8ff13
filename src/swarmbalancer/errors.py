"""Exceptions raised by swarmbalancer; each names what was wrong so a user can fix it."""

from __future__ import annotations


class SwarmBalancerError(Exception):
    """Base class of every error the package raises on purpose."""


class ConfigError(SwarmBalancerError, ValueError):
    """A configuration key is unknown or its value is invalid; the message names the key."""


class WorkloadError(SwarmBalancerError, ValueError):
    """A workload file is malformed; the message names the field."""


class TaskRejected(SwarmBalancerError, ValueError):
    """A task was refused at submission (bad field, failed admission control, no eligible agent)."""


class StoreError(SwarmBalancerError):
    """A store cannot be opened or used (locked by another process, unreadable, wrong schema)."""


class QueueFull(SwarmBalancerError):
    """The balancer holds `maxQueueSize` queued tasks and is configured to raise."""


class CircuitOpenError(SwarmBalancerError):
    """A call was refused because its circuit breaker is open and no fallback was given."""


class TaskFailed(SwarmBalancerError):
    """A task failed on its last allowed attempt; `cause` names the final error."""

    def __init__(self, task_id: str, attempts: int, cause: str) -> None:
        super().__init__(f"task {task_id} failed after {attempts} attempt(s): {cause}")
        self.task_id = task_id
        self.attempts = attempts
        self.cause = cause
