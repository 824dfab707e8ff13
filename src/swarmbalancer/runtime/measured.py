"""An attempt's own measure of how long it ran, for handlers that know better than the clock
around them: a handler that runs the task elsewhere (a Redis worker's `RedisAgent`) reports the
time the task ran there, so the round trip to it does not make its agent look slow.

The worker reads the value after the handler returns (the handler runs in the worker Task's
context), and forgets it, so it speaks for that one attempt.
"""

from __future__ import annotations

from contextvars import ContextVar

#: The running attempt's reported runtime, if any (the worker's hot path reads it directly).
REPORTED: ContextVar[float | None] = ContextVar("swarmbalancer_runtime", default=None)


def report_runtime(seconds: float) -> None:
    """Tell the runtime how long the running attempt's task ran (seconds, finite, >= 0);
    anything else is ignored and the clock around the handler counts."""
    if seconds >= 0 and seconds != float("inf"):
        REPORTED.set(seconds)


def elapsed(now: float, started: float) -> float:
    """The attempt's duration: the reported runtime if the handler gave one, else the time
    between `started` and `now`; the report is forgotten."""
    reported = REPORTED.get()
    if reported is None:
        return now - started
    REPORTED.set(None)
    return reported
