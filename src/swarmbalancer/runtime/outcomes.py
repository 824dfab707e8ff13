"""How the runtime reads what a handler raised: the error to report, whether a retry may follow,
and how long the agent asked to be left alone."""

from __future__ import annotations

import math
from dataclasses import dataclass

from swarmbalancer.errors import NonRetryable, RetryAfter


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt: the exception users see (`__cause__` of TaskFailed), its text, and
    the coordinator's `retryable` and `retry_after` arguments."""

    error: BaseException
    text: str
    retryable: bool
    retry_after: float | None


def classify(exc: BaseException, non_retryable: frozenset[str]) -> Failure:
    """Read a handler's exception.

    `NonRetryable(e)` and any exception whose class (or a base class) is named in
    `non_retryable` (by `__name__` or `module.qualname`) fail the task at once, as does any
    BaseException that is not an Exception. `RetryAfter(s)` and any exception with a finite
    numeric `retry_after` attribute >= 0 ask for the agent to rest that many seconds.
    """
    retryable = isinstance(exc, Exception)
    original: BaseException = exc
    if isinstance(exc, NonRetryable):
        retryable = False
        if isinstance(exc.error, BaseException):
            original = exc.error
    elif isinstance(exc, RetryAfter) and exc.error is not None:
        original = exc.error
    if retryable and non_retryable and _named(type(original), non_retryable):
        retryable = False
    text = f"{type(original).__name__}: {original}"
    return Failure(original, text, retryable, _retry_after(exc))


def _named(cls: type, names: frozenset[str]) -> bool:
    for base in cls.__mro__:
        if base.__name__ in names or f"{base.__module__}.{base.__qualname__}" in names:
            return True
    return False


def _retry_after(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
