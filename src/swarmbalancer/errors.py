"""Exceptions raised by swarmbalancer; each names what was wrong so a user can fix it."""

from __future__ import annotations

import math


class SwarmBalancerError(Exception):
    """Base class of every error the package raises on purpose."""


class ConfigError(SwarmBalancerError, ValueError):
    """A configuration key is unknown or its value is invalid; the message names the key."""


class WorkloadError(SwarmBalancerError, ValueError):
    """A workload file is malformed; the message names the field."""


class TaskRejected(SwarmBalancerError, ValueError):
    """A task was refused at submission (bad field, failed admission control, no eligible agent)."""


class AgentError(SwarmBalancerError, ValueError):
    """An agent operation is impossible (unknown id, duplicate id, already draining)."""


class StoreError(SwarmBalancerError):
    """A store cannot be opened or used (locked by another process, unreadable, wrong schema)."""


class LeaseHeld(StoreError):
    """A Redis swarm's leader lease is held by another live process (a standby waits for it)."""


class NotRunning(SwarmBalancerError, RuntimeError):
    """A balancer was used before `start()` (or `async with`) or after `stop()`."""


class QueueFull(SwarmBalancerError):
    """The balancer holds `maxQueueSize` queued tasks and is configured to raise."""


class CircuitOpenError(SwarmBalancerError):
    """A call was refused because its circuit breaker is open and no fallback was given."""


class TaskFailed(SwarmBalancerError):
    """A task failed on its last allowed attempt.

    `cause` names the final error as text; `errors` holds the exceptions the attempts raised
    (oldest first, those the runtime saw), `last_error` the final one, which is also `__cause__`.
    """

    def __init__(
        self,
        task_id: str,
        attempts: int,
        cause: str,
        errors: tuple[BaseException, ...] = (),
    ) -> None:
        super().__init__(f"task {task_id} failed after {attempts} attempt(s): {cause}")
        self.task_id = task_id
        self.attempts = attempts
        self.cause = cause
        self.errors = errors
        if errors:
            self.__cause__ = errors[-1]

    @property
    def last_error(self) -> BaseException | None:
        return self.errors[-1] if self.errors else None


class NonRetryable(SwarmBalancerError):
    """Raised by a handler to fail its task now, without retries: `raise NonRetryable(exc)`.

    The wrapped exception (or the message) is what the task's `TaskFailed` reports as its cause.
    """

    def __init__(self, error: BaseException | str) -> None:
        super().__init__(str(error))
        self.error = error
        if isinstance(error, BaseException):
            self.__cause__ = error


class RetryAfter(SwarmBalancerError):
    """Raised by a handler whose agent must rest: the agent gets no work for `seconds`, and the
    task is retried (elsewhere if another agent can take it). Any exception with a numeric
    `retry_after` attribute is honoured the same way."""

    def __init__(self, seconds: float, cause: BaseException | None = None) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise TypeError(f"seconds: {seconds!r} is not a number")
        value = float(seconds) if not isinstance(seconds, int) or seconds < 2**1000 else math.inf
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"seconds: must be finite and >= 0, got {seconds!r}")
        super().__init__(f"retry after {value}s" + (f": {cause}" if cause is not None else ""))
        self.retry_after = value
        self.error = cause
        if cause is not None:
            self.__cause__ = cause
