"""A bounded fault run: random failures, timeouts of async and plain handlers, agents removed and
re-added, handles cancelled. Every claim is checked against the handlers' own counters."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter

import pytest

from swarmbalancer import AgentError, Balancer, Task, TaskFailed, TaskHandle

TASKS = 2_000
TIMEOUT = 0.05
ASYNC_AGENTS = {"a0": 2, "a1": 3, "a2": 2}
PLAIN_AGENTS = {"p0": 2, "p1": 2}


class Ledger:
    """What the handlers themselves saw, guarded for the plain handlers' threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.successes: Counter[str] = Counter()
        self.raised = 0
        self.timed_out = 0  # async attempts ended by the balancer's timeout
        self.user_cancelled: set[str] = set()

    def enter(self, agent: str) -> None:
        with self.lock:
            self.running[agent] += 1
            self.most[agent] = max(self.most[agent], self.running[agent])

    def leave(self, agent: str) -> None:
        with self.lock:
            self.running[agent] -= 1


def fate(task: Task) -> float:
    """Per attempt, deterministically: < 0.1 raise, < 0.15 overrun the timeout, else run."""
    return random.Random(f"{task.payload}/{task.attempt}").random()


@pytest.mark.timeout(60)
def test_a_fault_run_ends_every_task_once_within_capacity_and_reports_what_handlers_saw() -> None:
    ledger = Ledger()

    async def async_handler(task: Task) -> int:
        agent = task.agent_id or "?"
        ledger.enter(agent)
        try:
            roll = fate(task)
            if roll < 0.1:
                with ledger.lock:
                    ledger.raised += 1
                raise RuntimeError("random failure")
            await asyncio.sleep(TIMEOUT * 4 if roll < 0.15 else roll * 0.002)
        except asyncio.CancelledError:
            if task.id not in ledger.user_cancelled:
                ledger.timed_out += 1
            raise
        finally:
            ledger.leave(agent)
        with ledger.lock:
            ledger.successes[task.id] += 1
        return int(task.payload)

    def plain_handler(task: Task) -> int:
        agent = task.agent_id or "?"
        ledger.enter(agent)
        try:
            roll = fate(task)
            if roll < 0.1:
                with ledger.lock:
                    ledger.raised += 1
                raise RuntimeError("random failure")
            time.sleep(TIMEOUT * 1.4 if roll < 0.15 else roll * 0.002)
        finally:
            ledger.leave(agent)
        with ledger.lock:
            ledger.successes[task.id] += 1
        return int(task.payload)

    lb = Balancer(
        {"taskTimeout": TIMEOUT, "maxRetries": 2, "retryBackoff": 0.001, "seed": 7},
    )
    for agent, capacity in ASYNC_AGENTS.items():
        lb.add_agent(agent, async_handler, capacity=capacity)
    for agent, capacity in PLAIN_AGENTS.items():
        lb.add_agent(agent, plain_handler, capacity=capacity)
    resolutions: Counter[str] = Counter()

    async def churn(stop: asyncio.Event) -> int:
        """Remove an agent, wait for it to retire, add it back; round and round."""
        cycles = 0
        names = [*ASYNC_AGENTS, *PLAIN_AGENTS]
        while not stop.is_set():
            agent = names[cycles % len(names)]
            lb.remove_agent(agent)
            while True:
                await asyncio.sleep(0.005)
                try:
                    handler = async_handler if agent in ASYNC_AGENTS else plain_handler
                    capacity = {**ASYNC_AGENTS, **PLAIN_AGENTS}[agent]
                    lb.add_agent(agent, handler, capacity=capacity)
                    break
                except AgentError:
                    continue  # still draining its running tasks
            cycles += 1
        return cycles

    async def main() -> tuple[list[TaskHandle], int]:
        rng = random.Random(3)
        stop = asyncio.Event()
        async with lb:
            churner = asyncio.ensure_future(churn(stop))
            handles: list[TaskHandle] = []
            for i in range(TASKS):
                handle = await lb.submit(i)
                handle.add_done_callback(lambda h: resolutions.update([h.id]))
                handles.append(handle)
                if i % 50 == 49:
                    await asyncio.sleep(0.002)
                    for victim in rng.sample(handles, 3):
                        ledger.user_cancelled.add(victim.id)
                        victim.cancel()
            await asyncio.gather(*handles, return_exceptions=True)
            stop.set()
            cycles = await churner
            await lb.join()
        return handles, cycles

    handles, cycles = asyncio.run(main())
    report = lb.report()

    # every task ends exactly once, and its handle says how
    assert all(h.done() for h in handles)
    assert set(resolutions) == {h.id for h in handles} and set(resolutions.values()) == {1}
    done_ok = [h for h in handles if not h.cancelled() and h.exception() is None]
    failed = [h for h in handles if not h.cancelled() and isinstance(h.exception(), TaskFailed)]
    cancelled = [h for h in handles if h.cancelled()]
    assert len(done_ok) + len(failed) + len(cancelled) == TASKS
    assert all(h.result() == int(h.task.payload) for h in done_ok)

    # no capacity overrun, ever, on any agent
    capacities = {**ASYNC_AGENTS, **PLAIN_AGENTS}
    assert all(ledger.most[a] <= capacities[a] for a in capacities), ledger.most
    assert all(ledger.running[a] == 0 for a in capacities)

    # no task reported failed after one of its attempts succeeded; none succeeded twice
    assert all(ledger.successes[h.id] == 0 for h in failed)
    assert all(ledger.successes[h.id] == 1 for h in done_ok)
    assert max(ledger.successes.values()) == 1

    # the report counts what the handlers saw
    assert report["accepted"] == TASKS and report["lost"] == 0 and report["open"] == 0
    assert report["completed"] == len(done_ok)
    assert report["failed"] == len(failed) and report["cancelled"] == len(cancelled)
    assert sum(row["completed"] for row in report["per_agent"]) == report["completed"]
    successes_of_cancelled = sum(ledger.successes[h.id] for h in cancelled)
    failed_attempts = sum(row["failed"] for row in report["per_agent"])
    assert failed_attempts == ledger.raised + ledger.timed_out
    assert report["completed"] + successes_of_cancelled == sum(ledger.successes.values())
    assert report["late_results"] > 0 and cycles > 0 and len(cancelled) > 0
