"""The edge side of a Redis swarm, as far as the coordinator's tests need it: a client's submit
and a worker's registration, beats, takes and reports, written from /work/wire-formats.md with
plain Redis commands (the real client and worker live in cluster/client.py and worker/)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from typing import Any

from redis.client import Redis

from swarmbalancer.cluster.keys import SwarmKeys
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


def rows(r: Redis, keys: SwarmKeys) -> dict[str, dict[str, Any]]:
    """Every task row of the swarm, parsed, by id."""
    return {k.decode(): json.loads(v) for k, v in r.hgetall(keys.tasks).items()}


def replies(r: Redis, keys: SwarmKeys, client: str) -> list[dict[str, Any]]:
    return [json.loads(e) for e in r.lrange(keys.reply(client), 0, -1)]
