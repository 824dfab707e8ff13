"""The edge side of a Redis swarm, as far as the coordinator's tests need it: a client's submit
and a worker's registration, beats, takes and reports, written from /work/wire-formats.md with
plain Redis commands (the real client and worker live in cluster/client.py and worker/)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterable
from typing import Any

from redis.client import Redis

from swarmbalancer.cluster.agents import LeaseDesk
from swarmbalancer.cluster.keys import LEASES_PIN, SwarmKeys
from swarmbalancer.cluster.rows import new_row
from swarmbalancer.model import Task

#: report.lua's contract (wire formats): keep an outcome only when its lease names this agent
#: and task, counting the rest as late.
_REPORT = """
local accepted = 0
for i = 2, #ARGV do
  local o = cjson.decode(ARGV[i])
  local held = redis.call('HGET', KEYS[1], o.lease)
  local agent, task = nil, nil
  if held then agent, task = string.match(held, '^(%S+) (.+) %d+$') end
  if agent == ARGV[1] and task == o.task then
    redis.call('HDEL', KEYS[1], o.lease)
    redis.call('RPUSH', KEYS[2], ARGV[i])
    accepted = accepted + 1
  else
    redis.call('HINCRBY', KEYS[3], 'late_results', 1)
  end
end
return accepted
"""


def lease_desk(swarm: str = "d") -> LeaseDesk:
    """A LeaseDesk for tests that make no Redis call: a fixed token and tag, no payloads, time 0."""
    return LeaseDesk(
        None,  # type: ignore[arg-type]  # no Redis call is made here
        SwarmKeys(swarm),
        token="tok",
        tag="t.",
        payload_of=lambda task_id: "null",
        clock=lambda: 0.0,
        timeout=lambda: None,
        wake=lambda: None,
    )


def submit(
    r: Redis,
    keys: SwarmKeys,
    payloads: Iterable[Any],
    *,
    client: str | None = None,
    prefix: str = "t",
    start: int = 0,
    **fields: Any,
) -> list[str]:
    """Submit tasks as submit.lua does (a row each, the next seq, the id pushed to inbox);
    ids are prefix + number. Returns the ids."""
    ids = []
    pipe = r.pipeline(transaction=False)
    first = r.incrby(keys.seq, 0)
    for n, payload in enumerate(payloads, start):
        task_id = f"{prefix}{n}"
        task = Task.create(payload, now=0.0, task_id=task_id, **fields)
        row = json.loads(new_row(task, client=client, wall=time.time(), max_payload_bytes=1 << 20))
        first += 1
        row["seq"] = first
        pipe.hset(keys.tasks, task_id, json.dumps(row))
        pipe.rpush(keys.inbox, task_id)
        ids.append(task_id)
    pipe.set(keys.seq, first)
    pipe.execute()
    return ids


def register(r: Redis, keys: SwarmKeys, agent: str, capacity: int, **extra: Any) -> None:
    """register.lua's effect: the registration, a beat and a `register` event."""
    now = float(r.time()[0]) + r.time()[1] / 1e6
    entry = {
        "id": agent,
        "capacity": capacity,
        "region": None,
        "weight": 1.0,
        "cost": 0.0,
        "speed_hint": None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "draining": False,
        **extra,
    }
    pipe = r.pipeline()
    pipe.hset(keys.agents, agent, json.dumps(entry))
    pipe.hset(keys.beats, agent, now)
    pipe.rpush(keys.events, json.dumps({"event": "register", "agent": agent}))
    pipe.execute()


def beat(r: Redis, keys: SwarmKeys, agent: str) -> None:
    seconds, micros = r.time()
    r.hset(keys.beats, agent, seconds + micros / 1e6)


def take(r: Redis, keys: SwarmKeys, agent: str, wait: float = 0.5) -> list[dict[str, Any]]:
    """Up to 1000 ready entries of one worker, waiting up to `wait` seconds for the first."""
    found = r.blmpop(wait, 1, keys.ready(agent), direction="LEFT", count=1000)
    if not found:
        return []
    return [json.loads(e) for e in found[1]]


def outcome(entry: dict[str, Any], agent: str, result: Any = None, **extra: Any) -> str:
    """An outcome JSON for a ready entry: ok with `result` unless `error` is given."""
    body = {
        "lease": entry["lease"],
        "task": entry["task"],
        "agent": agent,
        "ok": extra.get("error") is None,
        "result": result,
        "error": None,
        "retryable": True,
        "retry_after": None,
        "runtime": 0.0,
        "usage": None,
        **extra,
    }
    return json.dumps(body)


def report(r: Redis, keys: SwarmKeys, agent: str, outcomes: list[str]) -> int:
    """report.lua's effect, atomically: the number of outcomes accepted."""
    if not outcomes:
        return 0
    return int(r.eval(_REPORT, 3, keys.leases, keys.outcomes, keys.counters, agent, *outcomes))


def held(r: Redis, keys: SwarmKeys) -> list[str]:
    """The lease ids in `leases`, sorted (without the field that pins the hash's encoding)."""
    return sorted(k.decode() for k in r.hkeys(keys.leases) if k.decode() != LEASES_PIN)


def rows(r: Redis, keys: SwarmKeys) -> dict[str, dict[str, Any]]:
    """Every task row of the swarm, parsed, by id."""
    return {k.decode(): json.loads(v) for k, v in r.hgetall(keys.tasks).items()}


def replies(r: Redis, keys: SwarmKeys, client: str) -> list[dict[str, Any]]:
    return [json.loads(e) for e in r.lrange(keys.reply(client), 0, -1)]


class Worker:
    """A worker following the wire formats in a thread: registers, beats every `beat_every`
    seconds, takes its ready entries and reports `handle(entry)` for each (an outcome's
    fields: {"result": ...} or {"error": ..., "retryable": ...}). `ran` lists the task ids it
    ran, in order; `beating` and `running` can be switched off to play a dead worker (start
    one with `running=False` to have it take nothing at all: switched off later, it may still
    take, and drop, a batch it was waiting for)."""

    def __init__(
        self,
        port: int,
        keys: SwarmKeys,
        agent: str,
        *,
        capacity: int = 100,
        handle: Any = None,
        beat_every: float = 0.2,
        running: bool = True,
        **registration: Any,
    ) -> None:
        import threading

        self.r = Redis(port=port)
        self.keys = keys
        self.agent = agent
        self.capacity = capacity
        self.handle = handle or (lambda entry: {"result": entry["payload"]})
        self.beat_every = beat_every
        self.registration = registration
        self.ran: list[str] = []
        self.beating = True
        self.running = running
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Worker:
        register(self.r, self.keys, self.agent, self.capacity, **self.registration)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.r.close()

    def _loop(self) -> None:
        from redis.exceptions import ConnectionError as Unreachable

        while not self._stop.is_set():
            try:
                self._serve()
            except Unreachable:  # the server restarts: register again once it is back
                time.sleep(0.1)
                with contextlib.suppress(Unreachable):
                    register(self.r, self.keys, self.agent, self.capacity, **self.registration)

    def _serve(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            if self.beating and time.monotonic() - last >= self.beat_every:
                beat(self.r, self.keys, self.agent)
                last = time.monotonic()
            if not self.running:
                time.sleep(0.05)
                continue
            entries = take(self.r, self.keys, self.agent, wait=0.1)
            if not self.running:
                for entry in entries:  # switched off while it waited: give them back
                    self.r.lpush(self.keys.ready(self.agent), json.dumps(entry))
                continue
            outs = []
            for entry in entries:
                self.ran.append(entry["task"])
                outs.append(outcome(entry, self.agent, **self.handle(entry)))
            if outs and self.running:
                report(self.r, self.keys, self.agent, outs)


class CoordinatorProcess:
    """A `swarmbalancer coordinator` process, its stderr in a file."""

    def __init__(self, url: str, swarm: str, log: Any, *extra: str) -> None:
        import subprocess
        import sys

        self.log = log
        args = [sys.executable, "-m", "swarmbalancer", "coordinator", "--store", url]
        args += ["--swarm-id", swarm, *extra]
        with open(log, "wb") as stderr:
            self.process = subprocess.Popen(args, stderr=stderr)

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return open(self.log).read()

    def wait_for(self, needle: str, timeout: float = 30.0) -> None:
        """Wait until the log says `needle` (or fail, showing the log)."""
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {needle!r} in the coordinator's log:\n{self.text()}")
            time.sleep(0.05)

    def stop(self, *, kill: bool = False) -> int | None:
        if self.process.poll() is None:
            if kill:
                self.process.kill()
            else:
                self.process.terminate()
        try:
            return self.process.wait(timeout=20)
        except Exception:
            self.process.kill()
            return self.process.wait(timeout=10)


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def collect_replies(
    r: Redis, keys: SwarmKeys, client: str, count: int, timeout: float
) -> list[Any]:
    """Pop `client`'s replies until `count` arrived (or `timeout` passed); all of them."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        found = r.blmpop(0.2, 1, keys.reply(client), direction="LEFT", count=1000)
        if found:
            got.extend(json.loads(e) for e in found[1])
    return got


class InProcessCoordinator:
    """`run_coordinator` on its own event loop in a thread, stopped by `stop()` (its exit
    status); `states` records "standby" and "leader"."""

    def __init__(self, url: str, swarm: str, **options: Any) -> None:
        import asyncio
        import threading

        from swarmbalancer.cluster.coordinator import CoordinatorOptions

        self.options = CoordinatorOptions(store=url, swarm_id=swarm, **options)
        self.states: list[str] = []
        self.code: int | None = None
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, *, leader: bool = True) -> InProcessCoordinator:
        self._thread.start()
        if leader:
            wait_until(lambda: "leader" in self.states or self.code is not None, what="leader")
        return self

    def _run(self) -> None:
        import asyncio

        from swarmbalancer.cluster.coordinator import run_coordinator

        async def main() -> int:
            self._stop = asyncio.Event()
            return await run_coordinator(self.options, stop=self._stop, on_state=self.states.append)

        try:
            self.code = self._loop.run_until_complete(main())
        except BaseException as exc:
            self.error = exc
        finally:
            self._loop.close()

    def stop(self) -> int | None:
        if self._thread.is_alive() and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # closed: the coordinator has returned
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        if self.error is not None:
            raise self.error
        return self.code
