"""The in-process store: plain dicts and heaps, atomic because one event loop owns it."""

from __future__ import annotations

import contextlib
import heapq
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable
from typing import Any

from mypy_extensions import mypyc_attr

from swarmbalancer.model import AgentState, Priority, Task, TaskState
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.policies.views import QueueView
from swarmbalancer.store.record import TaskRecord

# enum members as module constants: on Python 3.11 reading one off its class costs ~70 ns
_CANCELLED = TaskState.CANCELLED
_DELAYED = TaskState.DELAYED
_DONE = TaskState.DONE
_FAILED = TaskState.FAILED
_PENDING = TaskState.PENDING
_QUEUED = TaskState.QUEUED
_RUNNING = TaskState.RUNNING


@mypyc_attr(allow_interpreted_subclasses=True)  # the SQLite and Redis stores
class MemoryStore:
    """Keeps all scheduling state in memory; finished tasks are dropped unless an idempotency key
    must still find them (the newest `remember_keys` keys are kept)."""

    durable = False

    def __init__(
        self, queue_factory: Callable[[], LevelQueue], *, remember_keys: int = 100_000
    ) -> None:
        self._new_queue = queue_factory
        self._agents: dict[str, AgentState] = {}
        self._queues: dict[str, LevelQueue] = {}
        self._tasks: dict[str, Task] = {}
        self._keys: OrderedDict[str, Task] = OrderedDict()
        self._remember = remember_keys
        self._leases: dict[str, float] = {}
        self._delayed: list[tuple[float, int, str]] = []
        self._parked: deque[Task] = deque()
        self._counters: dict[str, int] = {}
        self._shared = queue_factory()
        self._empty = queue_factory()  # what `queue` shows for an agent that never queued
        self._bound = 0  # tasks queued at agents (bound, not running), all agents together

    # -- agents -------------------------------------------------------------------------------
    def add_agent(self, agent: AgentState) -> None:
        if agent.id in self._agents:
            raise ValueError(f"agent {agent.id!r} is already registered")
        self._agents[agent.id] = agent

    def remove_agent(self, agent_id: str) -> list[Task]:
        agent = self._agents[agent_id]
        if agent.in_flight:
            raise ValueError(f"agent {agent_id!r} still runs {agent.in_flight} task(s)")
        tasks = self.evacuate(agent_id)
        del self._agents[agent_id]
        self._queues.pop(agent_id, None)
        return tasks

    def agent(self, agent_id: str) -> AgentState:
        return self._agents[agent_id]

    def agents(self) -> list[AgentState]:
        return list(self._agents.values())

    def queue(self, agent_id: str) -> QueueView:
        queue = self._queues.get(agent_id)
        if queue is None:
            if agent_id not in self._agents:
                raise KeyError(agent_id)
            return self._empty
        return queue

    def _queue(self, agent_id: str) -> LevelQueue:
        """The agent's queue, made on first use: under late binding most agents never queue."""
        queue = self._queues.get(agent_id)
        if queue is None:
            queue = self._queues[agent_id] = self._new_queue()
        return queue

    # -- tasks --------------------------------------------------------------------------------
    @property
    def remember_keys(self) -> int:
        """How many idempotency keys (the newest) are remembered."""
        return self._remember

    def put(self, task: Task) -> tuple[Task, bool]:
        key = task.idempotency_key
        if key is not None:
            seen = self._keys.get(key)
            if seen is not None:
                return seen, False
        if task.id in self._tasks:
            raise ValueError(f"task id {task.id!r} is already in use")
        if key is not None:
            self._keys[key] = task
            if len(self._keys) > self._remember:
                self._keys.popitem(last=False)
        self._tasks[task.id] = task
        return task, True

    def get(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def share(self, task: Task, now: float) -> None:
        task.state = _QUEUED
        task.agent_id = None
        task.enqueued_at = now
        self._shared.push(task, now)

    def take_shared(self, now: float) -> Task | None:
        task = self._shared.pop(now)
        if task is not None:
            task.state = _PENDING
        return task

    def shared_queue(self) -> QueueView:
        return self._shared

    def queued_counts(self) -> tuple[int, int]:
        return len(self._shared), self._bound

    def enqueue(self, agent_id: str, task: Task, now: float) -> None:
        agent = self._agents[agent_id]
        task.state = _QUEUED
        task.agent_id = agent_id
        task.enqueued_at = now
        self._queue(agent_id).push(task, now)
        agent.queued += 1
        agent.backlog += task.expected_work
        self._bound += 1

    def claim(self, agent_id: str, now: float, lease: float | None = None) -> Task | None:
        task = self._queue(agent_id).pop(now)
        if task is None:
            return None
        agent = self._agents[agent_id]
        agent.queued -= 1
        agent.backlog -= task.expected_work
        self._bound -= 1
        self._run(agent, task, now, lease)
        return task

    def start(self, agent_id: str, task: Task, now: float, lease: float | None = None) -> None:
        self._run(self._agents[agent_id], task, now, lease)

    def _run(self, agent: AgentState, task: Task, now: float, lease: float | None) -> None:
        agent.in_flight += 1
        agent.backlog += task.expected_work
        agent.run_work += task.expected_work
        agent.run_started += now
        task.agent_id = agent.id
        task.state = _RUNNING
        task.attempt += 1
        if task.dispatched_at is None:
            task.dispatched_at = now
        task.started_at = now
        if lease is not None:  # an attempt without a lease never expires: nothing to keep
            self._leases[task.id] = now + lease

    def move(self, task_ids: Collection[str], source: str, target: str, now: float) -> list[Task]:
        moved = self._queue(source).remove(task_ids)
        src, dst, queue = self._agents[source], self._agents[target], self._queue(target)
        for task in moved:
            src.queued -= 1
            src.backlog -= task.expected_work
            task.moves += 1
            task.agent_id = target
            queue.push(task, now)
            dst.queued += 1
            dst.backlog += task.expected_work
        return moved

    def evacuate(self, agent_id: str) -> list[Task]:
        queue = self._queue(agent_id)
        ids = [t.id for level in Priority for t in queue.level_tasks(level)]
        tasks = queue.remove(ids)
        agent = self._agents[agent_id]
        for task in tasks:
            agent.queued -= 1
            agent.backlog -= task.expected_work
            task.state = _PENDING
            task.agent_id = None
        self._bound -= len(tasks)
        return tasks

    def remove(self, task_id: str) -> Task | None:
        task = self._tasks.get(task_id)
        if task is None:
            return None
        state = task.state
        if state is _QUEUED:
            agent_id = task.agent_id
            if agent_id is None:
                self._shared.remove((task_id,))
            else:
                self._queue(agent_id).remove((task_id,))
                agent = self._agents[agent_id]
                agent.queued -= 1
                agent.backlog -= task.expected_work
                self._bound -= 1
        elif state is _DELAYED:
            self._delayed = [e for e in self._delayed if e[2] != task_id]
            heapq.heapify(self._delayed)
        elif state is _PENDING:
            with contextlib.suppress(ValueError):  # not parked: accepted, being routed
                self._parked.remove(task)
        else:
            return None  # running: only its attempt's end can finish it
        del self._tasks[task_id]
        task.state = _CANCELLED
        task.agent_id = None
        return task

    def _release(self, task_id: str, task: Task | None = None) -> Task:
        """End `task_id`'s attempt on its agent (`task` when the caller has already found it)."""
        if task is None:
            task = self._tasks[task_id]
        if task.state is not _RUNNING or task.agent_id is None:
            raise ValueError(f"task {task_id!r} is not in flight")
        agent = self._agents[task.agent_id]
        agent.in_flight -= 1
        agent.backlog -= task.expected_work
        agent.run_work -= task.expected_work
        agent.run_started -= task.started_at or 0.0
        if not agent.in_flight:  # no drift from float sums: exact zero when idle
            agent.run_work = agent.run_started = 0.0
        if self._leases:
            self._leases.pop(task_id, None)
        return task

    def ack(
        self,
        task_id: str,
        now: float,
        *,
        ok: bool,
        error: str | None = None,
        result: Any = None,
    ) -> Task:
        task = self._tasks.pop(task_id)  # one lookup finds and forgets it
        try:
            self._release(task_id, task)
        except ValueError:
            self._tasks[task_id] = task
            raise
        task.state = _DONE if ok else _FAILED
        task.error = error
        task.finished_at = now
        return task

    def defer(self, task_id: str, until: float, now: float) -> Task:
        task = self._release(task_id)
        task.state = _DELAYED
        task.agent_id = None
        heapq.heappush(self._delayed, (until, task.seq, task_id))
        return task

    def due(self, now: float) -> list[Task]:
        out: list[Task] = []
        heap = self._delayed
        while heap and heap[0][0] <= now:
            _, _, task_id = heapq.heappop(heap)
            task = self._tasks[task_id]
            task.state = _PENDING
            out.append(task)
        return out

    def next_due(self) -> float | None:
        return self._delayed[0][0] if self._delayed else None

    def park(self, task: Task, now: float) -> None:
        task.state = _PENDING
        task.agent_id = None
        if task.parked_at is None:
            task.parked_at = now
        self._parked.append(task)

    def unpark(self) -> list[Task]:
        tasks = list(self._parked)
        self._parked.clear()
        return tasks

    def oldest_parked(self) -> float | None:
        return self._parked[0].parked_at if self._parked else None

    def expired(self, now: float) -> list[Task]:
        return [self._tasks[i] for i, until in self._leases.items() if until < now]

    def renew(self, task_id: str, until: float) -> None:
        task = self._tasks.get(task_id)
        if task is None or task.state is not _RUNNING:
            raise ValueError(f"task {task_id!r} is not in flight")
        self._leases[task_id] = until

    def charge(self, agent_id: str, task: Task, runtime: float) -> None:
        self._shared.charge(task, runtime)
        queue = self._queues.get(agent_id)
        if queue is not None:
            queue.charge(task, runtime)

    # -- counters -----------------------------------------------------------------------------
    def incr(self, name: str, by: int = 1) -> int:
        value = self._counters.get(name, 0) + by
        self._counters[name] = value
        return value

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def open_tasks(self) -> Iterable[Task]:
        return list(self._tasks.values())

    # -- durability (nothing to do in memory) -------------------------------------------------
    def flush(self, now: float) -> None:
        return None

    def take_recovered(self, now: float) -> list[Task]:
        return []

    def result(self, task_id: str) -> TaskRecord | None:
        return None  # results live only in task handles

    def close(self) -> None:
        return None

    def drop_cancellations(self) -> None:
        return None
