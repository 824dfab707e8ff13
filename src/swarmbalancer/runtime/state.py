"""The balancer's state, declared once and typed, for `Balancer` and the parts it is made of.

`Balancer` sets every attribute in its `__init__`; its parts (`registry.py`, `submission.py`,
`durability.py`, `worker.py`) are classes it inherits from, reading this state directly so the
per-task path pays no indirection.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mypy_extensions import mypyc_attr

from swarmbalancer.clock import Clock
from swarmbalancer.config import BalancerConfig
from swarmbalancer.coordinator import Coordinator
from swarmbalancer.metrics.timing import RollingTimer
from swarmbalancer.model import Task
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.store.base import Store
from swarmbalancer.usage import Meter

Handler = Callable[[Task], Awaitable[Any]] | Callable[[Task], Any]


@mypyc_attr(allow_interpreted_subclasses=True)  # Balancer's subclasses
class BalancerState:
    """The attributes every part of the balancer shares (set by `Balancer.__init__`)."""

    config: BalancerConfig
    _coord: Coordinator
    _clock: Clock
    _now: Callable[[], float]
    _bounded: bool  # maxQueueSize is set: submits may wait for `_space`
    _non_retryable: frozenset[str]
    _handlers: dict[str, tuple[Handler, bool]]  # by agent id: the handler, is it async?
    _handles: dict[str, TaskHandle]  # unsettled tasks' handles, by task id
    _keyed: OrderedDict[str, TaskHandle]  # handles by idempotency key, newest last
    _key_limit: int
    _running_tasks: set[asyncio.Task[None]]  # worker Tasks
    _loop: asyncio.AbstractEventLoop | None
    _stopping: bool
    _executor: ThreadPoolExecutor | None
    _meters: dict[tuple[str, str | None], Meter]  # usage meters by (agent, tenant), this loop's
    _pool_size: int
    _max_threads: int | None
    _plain_capacity: int  # total capacity of agents with plain handlers, ever added
    _outstanding: int  # accepted tasks not settled yet
    _drained: asyncio.Event
    _space: asyncio.Event
    _timer: asyncio.TimerHandle | None
    _timer_at: float | None
    _pump_pending: bool
    _prefix: str
    _ids: itertools.count[int]
    _streak: int  # submits since the last one that let the loop run
    _streak_limit: int  # submits in a row before one lets the loop run
    _store: Store
    _durable: bool
    _flushed: list[asyncio.Future[None]]  # submits waiting for the next flush
    _unhandled: list[Task]  # recovered tasks whose handles `start` makes
    decision_timing: RollingTimer  # the coordinator's decision time (bottleneck-analyze)

    def _pump(self, now: float | None = None) -> None:
        """Dispatch now (`Balancer` defines it; every part asks it for a dispatch)."""
        raise NotImplementedError

    def _pump_soon(self) -> None:
        """Dispatch at the next loop iteration (`Balancer` defines it)."""
        raise NotImplementedError
