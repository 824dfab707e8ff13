"""The edge of the distributed mode alone: no-op tasks per second through worker processes and
through a Client, on one local redis-server, with the leader played by bulk redis commands.

    uv run python benchmarks/edge.py [--tasks 20000] [--workers 2] [--capacity 256]
                                     [--handler async|plain] [--only workers,client,e2e]

- `workers`: N leases pushed to the workers' ready lists in bulk (one pipeline); time until the
  N outcomes are all in `outcomes` (popped 1000 at a time, as a leader would). What the
  worker processes cost: BLMPOP takes, handler calls, batched report.lua.
- `client`: one producer's submit_many of N; a responder turns `inbox` ids straight into
  `reply:<client>` entries in bulk; time until every handle has resolved. What the client
  costs: rows, submit.lua batches, the reply reader.
- `e2e`: both, with `tests/fakeleader.py` in between, in a process of its own (it reads and
  writes every row, as the real leader's flush would): client -> inbox -> leases -> workers ->
  outcomes -> replies. The fake leader is a test helper in Python, not the coordinator.

The worker processes are started once (and registered) before the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakeleader import FakeLeader  # noqa: E402
from redisserver import RedisServer  # noqa: E402
from swarmbalancer import Client  # noqa: E402
from swarmbalancer.cluster.keys import SwarmKeys  # noqa: E402

SWARM = "bench"
K = SwarmKeys(SWARM)
_dump = json.JSONEncoder(separators=(",", ":")).encode


def start_workers(url: str, count: int, capacity: int, handler: str, logs: Path) -> list[Any]:
    processes = []
    for i in range(count):
        command = [
            sys.executable, "-m", "swarmbalancer", "worker", "--store", url,
            "--swarm-id", SWARM, "--handler", f"edge_handlers:{handler}_noop",
            "--capacity", str(capacity), "--id", f"w{i}",
        ]  # fmt: skip
        sink = (logs / f"w{i}.log").open("wb")
        processes.append(
            subprocess.Popen(
                command, cwd=ROOT / "tests" / "worker", stdout=sink, stderr=subprocess.STDOUT
            )
        )
    return processes


async def wait_registered(url: str, count: int) -> None:
    """Block until `count` register events arrive (a leader started later reads `agents`)."""
    r = Redis.from_url(url)
    try:
        seen, deadline = 0, time.monotonic() + 60
        while seen < count:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not register within 60 s")
            popped = await r.blmpop(2, 1, K.events, direction="LEFT", count=count)
            if popped:
                seen += sum(json.loads(e)["event"] == "register" for e in popped[1])
    finally:
        await r.aclose()


async def bench_workers(url: str, n: int, agents: list[str]) -> float:
    r = Redis.from_url(url)
    try:
        leases: dict[str, str] = {}
        ready: dict[str, list[str]] = {a: [] for a in agents}
        for i in range(n):
            agent = agents[i % len(agents)]
            lease = uuid.uuid4().hex
            leases[lease] = f"{agent} t{i} 1"
            ready[agent].append(
                _dump({"lease": lease, "task": f"t{i}", "attempt": 1, "payload": None,
                       "deadline": None, "timeout": None})
            )  # fmt: skip
        start = time.perf_counter()
        pipe = r.pipeline(transaction=False)
        pipe.hset(K.leases, mapping=leases)
        for agent, entries in ready.items():
            for first in range(0, len(entries), 10_000):
                pipe.rpush(K.ready(agent), *entries[first : first + 10_000])
        await pipe.execute()
        got = 0
        while got < n:
            popped = await r.blmpop(5, 1, K.outcomes, direction="LEFT", count=1000)
            if popped is None:
                raise RuntimeError(f"only {got} of {n} outcomes")
            got += len(popped[1])
        elapsed = time.perf_counter() - start
        assert await r.hlen(K.leases) == 0
        return n / elapsed
    finally:
        await r.aclose()


async def respond(url: str, stop: asyncio.Event) -> None:
    """Turn each submitted task straight into a done reply, 1000 at a time."""
    r = Redis.from_url(url)
    try:
        while not stop.is_set():
            popped = await r.blmpop(0.2, 1, K.inbox, direction="LEFT", count=1000)
            if not popped:
                continue
            ids = [i.decode() for i in popped[1]]
            rows = await r.hmget(K.tasks, ids)
            replies: dict[str, list[str]] = {}
            for task_id, text in zip(ids, rows, strict=True):
                client = json.loads(text)["client"]
                replies.setdefault(client, []).append(
                    _dump({"id": task_id, "state": "done", "result": None, "error": None,
                           "attempt": 1})
                )  # fmt: skip
            pipe = r.pipeline(transaction=False)
            for client, entries in replies.items():
                pipe.rpush(K.reply(client), *entries)
            await pipe.execute()
    finally:
        await r.aclose()


async def bench_client(url: str, n: int) -> float:
    stop = asyncio.Event()
    responder = asyncio.get_running_loop().create_task(respond(url, stop))
    try:
        async with Client(url, SWARM) as client:
            start = time.perf_counter()
            handles = await client.submit_many([None] * n)
            await asyncio.gather(*handles)
            return n / (time.perf_counter() - start)
    finally:
        stop.set()
        await responder


async def serve_leader(url: str) -> None:
    """Run the fake leader until this process is terminated (the `e2e` mode's leader)."""
    async with FakeLeader(url, SWARM):
        await asyncio.Event().wait()


async def bench_e2e(url: str, n: int) -> float:
    async with Client(url, SWARM) as client:
        await (await client.submit(None))  # the leader runs and has taken the registrations
        start = time.perf_counter()
        handles = await client.submit_many([None] * n)
        await asyncio.gather(*handles)
        return n / (time.perf_counter() - start)


async def clear(url: str) -> None:
    r = Redis.from_url(url)
    try:
        keys = [K.tasks, K.seq, K.inbox, K.outcomes, K.leases, K.finished, K.idem]
        await r.delete(*keys)
    finally:
        await r.aclose()


def rounds(label: str, repeat: int, once: Callable[[], float], url: str) -> None:
    """Run `once` `repeat` times (emptying the swarm's keys between) and print the median and
    the best rate: the machine is shared, so single runs are noisy."""
    rates = []
    for _ in range(repeat):
        rates.append(once())
        asyncio.run(clear(url))
    print(f"{label}: median {statistics.median(rates):,.0f}, best {max(rates):,.0f} tasks/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--capacity", type=int, default=256)
    parser.add_argument("--handler", choices=("async", "plain"), default="async")
    parser.add_argument("--only", default="workers,client,e2e")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--leader", help=argparse.SUPPRESS)  # URL: be the e2e's fake leader
    args = parser.parse_args()
    if args.leader:
        asyncio.run(serve_leader(args.leader))
        return
    chosen = args.only.split(",")
    n = args.tasks
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        url = server.url
        workers = start_workers(url, args.workers, args.capacity, args.handler, Path(tmp))
        leader: subprocess.Popen[bytes] | None = None
        try:
            asyncio.run(wait_registered(url, args.workers))
            agents = [f"w{i}" for i in range(args.workers)]
            label = f"{args.workers} worker(s) x capacity {args.capacity}, {args.handler} no-op"
            if "workers" in chosen:
                what = f"workers  {n} leases -> outcomes ({label})"
                rounds(what, args.repeat, lambda: asyncio.run(bench_workers(url, n, agents)), url)
            if "client" in chosen:
                what = f"client   submit_many({n}) -> replies resolved"
                rounds(what, args.repeat, lambda: asyncio.run(bench_client(url, n)), url)
            if "e2e" in chosen:
                leader = subprocess.Popen([sys.executable, __file__, "--leader", url])
                what = f"e2e      client -> fake leader -> {label}"
                rounds(what, args.repeat, lambda: asyncio.run(bench_e2e(url, n)), url)
        finally:
            for process in [*workers, *([leader] if leader else [])]:
                process.terminate()
            for process in [*workers, *([leader] if leader else [])]:
                process.wait(timeout=30)
            server.stop()


if __name__ == "__main__":
    main()
