"""The embedded runtime: drives the coordinator from an asyncio event loop with real handlers."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Any

from mypy_extensions import mypyc_attr

from swarmbalancer.clock import Clock, MonotonicClock
from swarmbalancer.config import BalancerConfig, load_config
from swarmbalancer.coordinator import Coordinator
from swarmbalancer.errors import AgentError, ConfigError
from swarmbalancer.metrics.timing import RollingTimer
from swarmbalancer.model import AgentSpec, Priority, Task, plain_task
from swarmbalancer.policies.rebalance import Migration
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.runtime.jobs import check_keywords
from swarmbalancer.runtime.ordered import in_order
from swarmbalancer.runtime.pump import Pump
from swarmbalancer.runtime.state import Handler
from swarmbalancer.store.base import Store
from swarmbalancer.store.record import TaskRecord
from swarmbalancer.store.url import open_store

__all__ = ["LIVE_KEYS", "Balancer", "Handler"]

#: The configuration keys `update_config` may change on a running balancer: each is read afresh
#: where it is used (an attempt's timeout, a new task's retries, a retry's backoff), and a new
#: strategy replaces the router (`Coordinator.set_strategy`).
LIVE_KEYS = frozenset({"strategy", "taskTimeout", "maxRetries", "retryBackoff", "retryBackoffMax"})

#: The fewest submits in a row after which `submit` lets the loop run, so workers start during a
#: burst; with more slots than this, one submit per slot (each woken worker then finds a task).
_SUBMIT_STREAK = 32


@mypyc_attr(allow_interpreted_subclasses=True)  # the cluster's and users' subclasses
class Balancer(Pump):
    """Spreads submitted tasks over registered agents; use it as `async with Balancer(...)`.

    Every decision is the coordinator's; this class only runs handlers, keeps time and wakes the
    coordinator when a timer (retry backoff, rebalancing) is due. Its private parts live next to
    it: `worker.py` (attempts), `submission.py` (accepting tasks), `durability.py` (recovery,
    flushes) and `registry.py` (handles, cancellation), over the state `state.py` declares.
    """

    def __init__(
        self,
        config: BalancerConfig | dict[str, Any] | None = None,
        *,
        store: Store | str | None = None,
        clock: Clock | None = None,
        max_threads: int | None = None,
    ) -> None:
        if isinstance(store, str):  # a URL: memory, sqlite:///path.db
            config = load_config(config)
            store = open_store(store, config)
        self._coord = Coordinator(config, store=store)
        self.config = self._coord.config
        self._clock = clock or MonotonicClock()
        self._now = self._clock.now
        self._bounded = self.config.max_queue_size is not None
        self._non_retryable = frozenset(self.config.non_retryable)
        self._handlers = {}
        self._handles = {}
        self._keyed = OrderedDict()
        self._key_limit = getattr(self._coord.store, "remember_keys", 100_000)
        self._running_tasks = set()
        self._loop = None
        self._stopping = False
        self._executor = None
        self._meters = {}
        self._pool_size = 0
        self._max_threads = max_threads
        self._plain_capacity = 0
        self._outstanding = 0
        self._drained = asyncio.Event()
        self._space = asyncio.Event()
        self._timer = None
        self._timer_at = None
        self._pump_pending = False
        self._prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        self._streak = 0
        self._streak_limit = _SUBMIT_STREAK
        self._store = self._coord.store
        self._durable = self._store.durable
        self._flushed = []
        self._unhandled = []
        #: the coordinator's decision time: each dispatch and timer tick (bottleneck-analyze)
        self.decision_timing = RollingTimer()
        self._recover()

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start dispatching; `async with` calls this for you."""
        self._loop = asyncio.get_running_loop()
        self._meters.clear()  # they name the loop they report on
        self._stopping = False
        self._handle_recovered()
        self._pump()

    async def stop(self, *, drain: bool = True) -> None:
        """Finish (or, with drain=False, cancel) every task, then release threads and timers.

        Without draining, running handlers get CancelledError and every task still waiting is
        cancelled: each handle ends cancelled and the report counts them as `cancelled`. A plain
        handler's thread cannot be stopped; the balancer does not wait for it. A durable store
        does not record these cancellations: the tasks stay unfinished in its file, for the next
        balancer on it to recover.
        """
        if drain:
            await self.join()
        self._stopping = True
        self._flush(self._now())  # what happened so far is durable; what follows is stopping
        for task in list(self._running_tasks):
            task.cancel()
        if self._running_tasks:
            await asyncio.gather(*self._running_tasks, return_exceptions=True)
        self._cancel_waiting()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._loop = None
        self._store.drop_cancellations()
        self._flush(self._now())

    def close(self) -> None:
        """Release the store (a durable store's file and its lock); call it after `stop`."""
        self._store.close()

    async def __aenter__(self) -> Balancer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop(drain=exc_type is None)

    def update_config(self, changes: dict[str, Any]) -> BalancerConfig:
        """Apply `changes` (either spelling) to the running configuration and return it.

        The result is validated whole, as `load_config` would; only `LIVE_KEYS` may change, since
        the other keys shaped policies built at start: a new value for one is a ConfigError
        naming it. `maxRetries` applies to tasks submitted from now on; a new `strategy` routes
        every task not yet bound.
        """
        new = self.config.updated(changes)
        old_values, new_values = self.config.to_dict(), new.to_dict()
        fixed = [k for k in new_values if new_values[k] != old_values[k] and k not in LIVE_KEYS]
        if fixed:
            live = ", ".join(sorted(LIVE_KEYS))
            raise ConfigError(f"{fixed[0]}: cannot change while running (live keys: {live})")
        if new.strategy != self.config.strategy:
            self._coord.set_strategy(new, self._now())
            self._pump_soon()
        self.config = self._coord.config = new
        return new

    def now(self) -> float:
        """The balancer's clock, in seconds: the one `deadline=` is read on."""
        return self._now()

    # -- agents -------------------------------------------------------------------------------
    def add_agent(
        self,
        agent_id: str,
        handler: Handler,
        *,
        capacity: int = 1,
        weight: float = 1.0,
        region: str | None = None,
        cost: float = 0.0,
        speed_hint: float | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        """Register an agent; `handler(task)` may be async or plain (plain runs in a thread).

        `speed_hint` (work units per second) is only where the learned speed starts; leave it out
        when unknown. The thread pool grows to the total capacity of the plain agents (or
        `max_threads`).
        """
        if not callable(handler):
            raise AgentError(f"handler: {handler!r} is not callable")
        tag_set = _tags(tags)
        spec = AgentSpec(
            id=agent_id,
            capacity=capacity,
            weight=weight,
            speed_hint=speed_hint,
            region=region,
            cost=cost,
            tags=tag_set,
        )
        existing = self._agent(agent_id)
        if existing is not None:
            state = "still draining" if existing.draining else "already registered"
            raise AgentError(f"agent_id: {agent_id!r} is {state}")
        is_async = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
            type(handler).__call__
        )
        self._coord.add_agent(spec, self._now())
        self._handlers[agent_id] = (handler, is_async)
        self._size_streak()
        if not is_async:
            self._plain_capacity += capacity
        self._pump()

    def remove_agent(self, agent_id: str) -> None:
        """Stop routing to an agent: its queue moves to the others, its running tasks finish."""
        existing = self._agent(agent_id)
        if existing is None:
            raise AgentError(f"agent_id: {agent_id!r} is not registered")
        if existing.draining:
            raise AgentError(f"agent_id: {agent_id!r} is already being removed")
        self._coord.remove_agent(agent_id, self._now())
        self._size_streak()
        self._pump()

    def _size_streak(self) -> None:
        """One submit per slot of the agents taking work (at least `_SUBMIT_STREAK`) before a
        burst lets the loop run."""
        slots = sum(a.spec.capacity for a in self._coord.store.agents() if not a.draining)
        self._streak_limit = max(_SUBMIT_STREAK, slots)

    def _agent(self, agent_id: object) -> Any:
        if not isinstance(agent_id, str):
            raise AgentError(f"agent_id: {agent_id!r} is not a string")
        try:
            return self._coord.store.agent(agent_id)
        except KeyError:
            return None

    # -- tasks --------------------------------------------------------------------------------
    async def submit(
        self,
        payload: Any = None,
        *,
        priority: Priority | str = "normal",
        tenant: str | None = None,
        deadline: float | None = None,
        within: float | None = None,
        estimate: float | None = None,
        affinity: str | Iterable[str] | None = None,
        region: str | None = None,
        idempotency_key: str | None = None,
        task_id: str | None = None,
        max_retries: int | None = None,
        period: float | None = None,
    ) -> TaskHandle:
        """Accept a task and return its handle (the first handle again for a repeated key).

        `deadline` is absolute on `now()` and must not be past; `within` is relative.
        """
        self._check_running()
        now = self._now()
        if (
            priority == "normal"
            and tenant is None
            and deadline is None
            and within is None
            and estimate is None
            and affinity is None
            and region is None
            and idempotency_key is None
            and task_id is None
            and max_retries is None
            and period is None
            and not self._bounded
            and not self._durable
        ):  # a plain task (every keyword at its default): the path most submits take
            task = plain_task(
                f"{self._prefix}-{next(self._ids)}", payload, self.config.max_retries, now
            )
            handle = self._accept(task)
        else:
            handle = await self._submit_task(
                idempotency_key is not None or task_id is not None,
                self._make(
                    payload,
                    now,
                    priority=priority,
                    tenant=tenant,
                    deadline=deadline,
                    within=within,
                    estimate=estimate,
                    affinity=affinity,
                    region=region,
                    idempotency_key=idempotency_key,
                    task_id=task_id,
                    max_retries=max_retries,
                    period=period,
                ),
            )
            if self._durable:
                return handle
        if not self._pump_pending:
            self._pump_soon()
        self._streak += 1
        if self._streak >= self._streak_limit:
            # a loop of submits that never waits would start no task until it ends: let the
            # workers run now and then, as a burst is being submitted
            self._streak = 0
            await asyncio.sleep(0)
        return handle

    async def _submit_task(self, keyed: bool, task: Task) -> TaskHandle:
        """Accept a task that is not plain: an earlier task's handle for a repeated key (or a
        refusal of a task id in use, when `keyed`), room waited for under `maxQueueSize`,
        durable on return with a durable store."""
        if keyed:
            known = self._fresh(task)
            if known is not None:
                if self._durable:  # its first submit may still wait for the flush
                    await self._next_flush()
                return known
        if self._bounded:
            await self._wait_for_space()
            task.submitted_at = self._now()
        handle = self._accept(task)
        if self._durable:  # durable on return: waiting for the flush lets the loop run too
            await self._next_flush()
        return handle

    async def submit_many(self, payloads: Iterable[Any], **keywords: Any) -> list[TaskHandle]:
        """Submit a batch: `keywords` (submit's) apply to every item; an item may be a `Job`
        whose own fields override them. Every item is validated before any is accepted.

        Returns the handles in the items' order. With `maxQueueSize` and `queueFull: raise`, a
        batch that does not fit raises QueueFull before accepting anything; with `wait`, it
        waits for room item by item. With a durable store, the whole batch is written in one
        flush before this returns.
        """
        self._check_running()
        check_keywords(keywords)
        now = self._now()
        tasks, plain = self._make_batch(payloads, keywords, now)
        if not plain or self._bounded:
            self._check_batch(tasks)
        if not plain:
            self._check_fresh(tasks)
        handles: list[TaskHandle] = []
        accepted: list[TaskHandle] = []
        try:
            if plain and not self._bounded:
                accept = self._accept
                for task in tasks:  # each handle is kept as soon as its task is accepted
                    accepted.append(accept(task))
                tasks = []
                handles = accepted
            for task in tasks:
                known = self._known(task)
                if known is not None:
                    handles.append(known)
                    continue
                if self._bounded:
                    await self._wait_for_space()
                    task.submitted_at = self._now()
                handle = self._accept(task)
                handles.append(handle)
                accepted.append(handle)
        except BaseException:
            for handle in accepted:  # admission control refused one: take the batch back
                handle.cancel()
            raise
        if self._durable:  # one flush writes the batch
            await self._next_flush()
        else:
            self._pump_soon()
        return handles

    def map(self, payloads: Iterable[Any], **keywords: Any) -> AsyncIterator[Any]:
        """Submit every item and yield the results in submission order, as `Executor.map` does.

        A task that failed raises TaskFailed at its position. Items are validated before any is
        submitted; with `maxQueueSize` they are submitted lazily, at most that many ahead of
        the consumer, so memory stays bounded. Closing the iterator early cancels the rest.
        """
        return in_order(self, payloads, keywords)

    def result(self, task_id: str) -> TaskRecord | None:
        """What the store recorded about a task, by id: with a durable store, finished tasks'
        results stay readable for `resultRetention` (also after a restart); None if unknown."""
        return self._store.result(task_id)

    async def join(self) -> None:
        """Wait until every accepted task has completed, failed or been cancelled."""
        while self._outstanding:
            await self._drained.wait()

    def report(self) -> dict[str, Any]:
        """The metrics report: a strict-JSON dict (docs/metrics.md)."""
        return self._coord.report()

    def rebalance(self, *, apply: bool = True) -> list[Migration]:
        """Run the rebalancer now: the migrations it made (`apply`), or would make (a dry run
        that moves nothing); none while `rebalanceEnabled` is off."""
        migrations = self._coord.rebalance(self._now(), apply=apply)
        if migrations:
            self._pump_soon()
        return migrations

    @property
    def coordinator(self) -> Coordinator:
        return self._coord

    @property
    def outstanding(self) -> int:
        return self._outstanding


def _tags(tags: object) -> frozenset[str]:
    """An agent's tags as a set of strings; anything else is an AgentError naming `tags`."""
    problem = f"tags: {tags!r} must be a list of strings"
    if isinstance(tags, str | bytes):
        raise AgentError(problem + ", not one string")
    try:
        found: frozenset[object] = frozenset(tags)  # type: ignore[call-overload]
    except TypeError:
        raise AgentError(problem) from None
    strings = frozenset(tag for tag in found if isinstance(tag, str))
    if len(strings) != len(found):
        raise AgentError(problem)
    return strings
