"""`report_usage`: a handler says what its task consumed (tokens, model, cost).

The runtime's worker sets a context variable to the running attempt's meter before calling the
handler, so the call needs no argument naming the task; a plain handler's thread inherits it
(the worker runs the thread in a copy of its context). Outside a handler it raises.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from swarmbalancer.errors import NotRunning
from swarmbalancer.metrics.usage import Usage, check_usage

__all__ = ["Meter", "report_usage", "running_meter"]


@dataclass(frozen=True, slots=True)
class Meter:
    """Where the running attempt's usage goes: `sink(agent_id, tenant, usage)`, called on the
    balancer's event loop (from a thread, through `call_soon_threadsafe`)."""

    sink: Callable[[str, str | None, Usage], None]
    agent_id: str
    tenant: str | None
    loop: asyncio.AbstractEventLoop
    thread: int

    def add(self, usage: Usage) -> None:
        if threading.get_ident() == self.thread:
            self.sink(self.agent_id, self.tenant, usage)
        else:
            self.loop.call_soon_threadsafe(self.sink, self.agent_id, self.tenant, usage)


_METER: ContextVar[Meter | None] = ContextVar("swarmbalancer_meter", default=None)


def running_meter() -> ContextVar[Meter | None]:
    """The context variable the worker sets for each attempt."""
    return _METER


def report_usage(
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    model: str | None = None,
    cost: float | None = None,
) -> None:
    """Record what the running task consumed; call it inside a handler, once or several times
    (the figures add up). Counted per agent, tenant and model in the report's `token_usage`.

    Raises TaskRejected naming a bad field, NotRunning outside a handler.
    """
    usage = check_usage(Usage(input_tokens, output_tokens, model, cost))
    meter = _METER.get()
    if meter is None:
        raise NotRunning("report_usage: call it inside a handler the balancer runs")
    meter.add(usage)
