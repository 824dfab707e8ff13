"""A stand-in for the coordinator side of a swarm across machines, for the edge's tests and
benchmark: plain redis commands following the agreed wire formats, in bulk.

It pops `inbox`, `outcomes` and `events` with one BLMPOP; leases each submitted task to a
registered worker (round robin) by HSET `leases` and RPUSH `ready:<agent>`; records each
outcome in the task's row, retries a retryable failure while `max_retries` allows, and pushes
`reply:<client>` entries. With `execute`, it runs tasks itself instead of leasing them (for the
client's tests, which then need no worker process). It makes no scheduling decision worth the
name: that is the real coordinator's job.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from swarmbalancer.cluster.keys import SwarmKeys

_dump = json.JSONEncoder(separators=(",", ":")).encode

#: execute(payload) -> ("done", result) | ("failed", error) | ("cancelled" | "hold", None)
Execute = Callable[[Any], tuple[str, Any]]


@dataclass
class FakeLeader:
    """Plays the leader for one swarm; `async with FakeLeader(url, swarm) as leader:`."""

    url: str
    swarm_id: str
    epoch: int = 1
    timeout: float | None = None
    execute: Execute | None = None
    agents: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    held: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keys = SwarmKeys(self.swarm_id)
        self.redis = Redis.from_url(self.url)
        self.backlog: deque[dict[str, Any]] = deque()
        self.running: dict[str, dict[str, Any]] = {}  # rows of leased tasks, by id
        self._leases = itertools.count(1)
        self.finished = 0
        self._rr = itertools.count()
        self._joined: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._left: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def __aenter__(self) -> FakeLeader:
        for agent, text in (await self.redis.hgetall(self.keys.agents)).items():
            if not json.loads(text).get("draining"):  # registered before this leader started
                self.agents.append(agent.decode())
                self._joined[agent.decode()].set()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        # redis-py can swallow a cancellation that lands in a blocking read, so the loop also
        # checks a flag after each (short) BLMPOP, and the cancel is repeated until it ends
        self._stopping = True
        task = self._task
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await self.redis.aclose()

    async def joined(self, agent_id: str) -> None:
        """Wait for a worker's register event."""
        await self._joined[agent_id].wait()

    async def left(self, agent_id: str) -> None:
        """Wait for a worker's deregister event."""
        await self._left[agent_id].wait()

    async def finished_at_least(self, count: int) -> None:
        """Wait until `count` tasks have finished (done or failed)."""
        while self.finished < count:
            self._progress.clear()
            await self._progress.wait()

    async def release(self, task_id: str, result: Any) -> None:
        """Finish a task `execute` held, with `result`."""
        row = self.held.pop(task_id)
        pipe = self.redis.pipeline(transaction=False)
        self._finish(pipe, row, "done", result, None)
        await pipe.execute()

    async def _run(self) -> None:
        k = self.keys
        while not self._stopping:
            got = await self.redis.blmpop(
                0.2, 3, k.outcomes, k.events, k.inbox, direction="LEFT", count=1000
            )
            if not got:
                continue
            key, items = got[0].decode(), got[1]
            if key == k.inbox:
                await self._take_inbox([i.decode() for i in items])
            elif key == k.outcomes:
                await self._take_outcomes([json.loads(i) for i in items])
            else:
                self._take_events([json.loads(i) for i in items])
                if self.agents and self.backlog:
                    rows = list(self.backlog)
                    self.backlog.clear()
                    await self._lease(rows)
            self._progress.set()

    def _take_events(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.events.append(event)
            agent = event["agent"]
            if agent in self.agents:
                self.agents.remove(agent)
            if event["event"] == "register":
                self.agents.append(agent)
                self._joined[agent].set()
            elif event["event"] == "deregister":
                self._left[agent].set()

    async def _take_inbox(self, ids: list[str]) -> None:
        texts = await self.redis.hmget(self.keys.tasks, ids)
        rows = [json.loads(t) for t in texts if t is not None]
        if self.execute is None:
            await self._lease(rows)
            return
        pipe = self.redis.pipeline(transaction=False)
        for row in rows:
            row["attempt"] = int(row["attempt"]) + 1
            state, value = self.execute(row["payload"])
            if state == "hold":
                row["state"] = "running"
                self.held[row["id"]] = row
                pipe.hset(self.keys.tasks, row["id"], _dump(row))
            elif state == "done":
                self._finish(pipe, row, "done", value, None)
            else:  # failed (value: the error) or cancelled
                self._finish(pipe, row, state, None, value)
        await pipe.execute()

    async def _lease(self, rows: list[dict[str, Any]]) -> None:
        if not self.agents:
            self.backlog.extend(rows)
            return
        leases: dict[str, str] = {}
        ready: dict[str, list[str]] = defaultdict(list)
        changed: dict[str, str] = {}
        for row in rows:
            agent = self.agents[next(self._rr) % len(self.agents)]
            row["attempt"] = int(row["attempt"]) + 1
            row["state"] = "running"
            lease = f"{self.epoch}-{next(self._leases)}"
            self.running[row["id"]] = row
            leases[lease] = f"{agent} {row['id']} {self.epoch}"
            entry = {
                "lease": lease,
                "task": row["id"],
                "attempt": row["attempt"],
                "payload": row["payload"],
                "deadline": row.get("deadline"),
                "timeout": self.timeout,
            }
            ready[agent].append(_dump(entry))
            changed[row["id"]] = _dump(row)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.leases, mapping=leases)
        pipe.hset(self.keys.tasks, mapping=changed)
        for agent, entries in ready.items():
            pipe.rpush(self.keys.ready(agent), *entries)
        await pipe.execute()

    async def _take_outcomes(self, outcomes: list[dict[str, Any]]) -> None:
        self.outcomes.extend(outcomes)
        again: list[dict[str, Any]] = []
        ends: list[tuple[dict[str, Any], str, Any, Any]] = []
        for outcome in outcomes:
            row = self.running.pop(outcome["task"])
            if outcome["ok"]:
                ends.append((row, "done", outcome["result"], None))
            elif outcome["retryable"] and row["attempt"] <= row["max_retries"]:
                row["error"] = outcome["error"]
                again.append(row)
            else:
                ends.append((row, "failed", None, outcome["error"]))
        pipe = self.redis.pipeline(transaction=False)
        self._finish_all(pipe, ends)
        await pipe.execute()
        if again:
            await self._lease(again)

    def _finish(self, pipe: Any, row: dict[str, Any], state: str, result: Any, error: Any) -> None:
        self._finish_all(pipe, [(row, state, result, error)])

    def _finish_all(self, pipe: Any, ends: list[tuple[dict[str, Any], str, Any, Any]]) -> None:
        """Record finished tasks in bulk: one HSET, ZADDs and one RPUSH per client."""
        if not ends:
            return
        now = time.time()
        changed: dict[str, str] = {}
        dead: dict[str, float] = {}
        replies: dict[str, list[str]] = defaultdict(list)
        for row, state, result, error in ends:
            row.update(state=state, result=result, error=error, finished_wall=now)
            changed[row["id"]] = _dump(row)
            if state == "failed":
                dead[row["id"]] = now
            if row.get("client"):
                reply = {"id": row["id"], "state": state, "result": result, "error": error,
                         "attempt": row["attempt"]}  # fmt: skip
                replies[row["client"]].append(_dump(reply))
        pipe.hset(self.keys.tasks, mapping=changed)
        pipe.zadd(self.keys.finished, dict.fromkeys(changed, now))
        if dead:
            pipe.zadd(self.keys.dead, dead)
        for client, entries in replies.items():
            pipe.rpush(self.keys.reply(client), *entries)
        self.finished += len(ends)
