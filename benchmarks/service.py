"""`swarmbalancer serve` over real HTTP: submit throughput, end-to-end tasks/s with HTTP agents,
and the server's memory over a sustained run.

    uv run python benchmarks/service.py [--quick] [--duration 120] [--agents 4] [--slots 8]

Each phase starts its own server (`python -m swarmbalancer serve` on a free loopback port, as a
user runs it, access log included) and drives it with httpx from this process:

- `submit`: a bounded number of single `POST /v1/tasks` (16 requests in flight), then the same
  number of tasks through `POST /v1/tasks/batch` (100 a request, 4 in flight). No agent is
  registered, so the tasks only wait: this is the API's cost, not the swarm's.
- `sustained`: `--agents` HTTP agents (coroutines), each with `--slots` long-poll loops
  (`GET /next?wait=5`, then a no-op `POST /leases/L`), and one producer keeping about 2,000 tasks
  outstanding with batches of 100. Tasks/s is the completed count over the run; the server's RSS
  (`/proc/PID/status`) is sampled every few seconds: start, peak, end, and the least-squares
  slope over the second half of the samples. The service keeps the newest `--keep-finished`
  (100,000) finished tasks readable by id and `latencySamples` (200,000) exact values per
  latency series, so memory climbs until that many have finished, then should stay flat; lower
  both (`--keep-finished 2000 --latency-samples 5000`) to see the plateau within minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

IN_FLIGHT = 16
BATCH = 100
BATCH_IN_FLIGHT = 4
OUTSTANDING = 2000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def server(keep_finished: int = 100_000, samples: int = 200_000) -> Iterator[tuple[str, int]]:
    """A `swarmbalancer serve` process on a free loopback port: (url, pid); it keeps
    `keep_finished` finished tasks readable and `samples` exact values per latency series."""
    port = free_port()
    config = json.dumps({"rebalanceEnabled": False, "latencySamples": samples})
    with tempfile.TemporaryDirectory() as cwd:  # no swarmbalancer.json of the caller's
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "swarmbalancer",
                "serve",
                f"--port={port}",
                f"--config={config}",
                f"--keep-finished={keep_finished}",
            ],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
            yield url, proc.pid
        finally:
            proc.terminate()
            proc.wait(15)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@contextlib.asynccontextmanager
async def client(url: str, connections: int) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as c:
        yield c


async def submit_single(url: str, n: int) -> float:
    async with client(url, IN_FLIGHT) as c:
        todo = iter(range(n))

        async def worker() -> None:
            for i in todo:
                reply = await c.post("/v1/tasks", json={"payload": {"i": i}})
                assert reply.status_code == 201, reply.text

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        return n / (time.perf_counter() - start)


async def submit_batches(url: str, n: int) -> float:
    async with client(url, BATCH_IN_FLIGHT) as c:
        todo = iter(range(0, n, BATCH))

        async def worker() -> None:
            for first in todo:
                items = [{"payload": {"i": i}} for i in range(first, min(first + BATCH, n))]
                reply = await c.post("/v1/tasks/batch", json={"items": items})
                assert reply.status_code == 201, reply.text

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(BATCH_IN_FLIGHT)))
        return n / (time.perf_counter() - start)


async def sustained(
    url: str, pid: int, duration: float, agents: int, slots: int, every: float
) -> dict[str, Any]:
    """HTTP agents and a producer for `duration` seconds; tasks/s and RSS samples."""
    stop = asyncio.Event()
    async with client(url, agents * slots + 8) as c:
        for a in range(agents):
            reply = await c.post("/v1/agents", json={"id": f"a{a}", "capacity": slots})
            assert reply.status_code == 201, reply.text

        async def slot(agent_id: str) -> None:
            while not stop.is_set():
                reply = await c.get(f"/v1/agents/{agent_id}/next", params={"wait": 5})
                if reply.status_code == 204:
                    continue
                assert reply.status_code == 200, reply.text
                lease = reply.json()["lease"]
                done = await c.post(f"/v1/agents/{agent_id}/leases/{lease}", json={"result": None})
                assert done.status_code == 200, done.text

        async def producer() -> None:
            while not stop.is_set():
                outstanding = (await c.get("/health")).json()["outstanding"]
                if outstanding >= OUTSTANDING:
                    await asyncio.sleep(0.05)
                    continue
                items = [{"payload": None}] * BATCH
                reply = await c.post("/v1/tasks/batch", json={"items": items})
                assert reply.status_code == 201, reply.text

        async def completed() -> int:
            count: int = (await c.get("/v1/report")).json()["completed"]
            return count

        workers = [asyncio.create_task(slot(f"a{a}")) for a in range(agents) for _ in range(slots)]
        workers.append(asyncio.create_task(producer()))
        samples: list[tuple[float, float, int]] = []  # (seconds, RSS MiB, completed)
        start = time.perf_counter()
        first = await completed()
        samples.append((0.0, rss_mib(pid), first))
        while (elapsed := time.perf_counter() - start) < duration:
            await asyncio.sleep(min(every, duration - elapsed))
            samples.append((time.perf_counter() - start, rss_mib(pid), await completed()))
        stop.set()
        await asyncio.wait(workers, timeout=10)
        for w in workers:
            w.cancel()
    seconds, _, last = samples[-1]
    rates = [(c1 - c0) / (t1 - t0) for (t0, _, c0), (t1, _, c1) in itertools.pairwise(samples)]
    return {
        "tasks": last - first,
        "tasks_per_s": (last - first) / seconds,
        "interval_rates": rates,
        "samples": samples,
    }


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a ~20 s smoke run")
    parser.add_argument("--requests", type=int, default=3000, help="tasks per submit mode")
    parser.add_argument("--duration", type=float, default=120.0, help="sustained run, seconds")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--slots", type=int, default=8, help="long-poll loops per agent")
    parser.add_argument(
        "--keep-finished", type=int, default=100_000, help="the sustained server's --keep-finished"
    )
    parser.add_argument(
        "--latency-samples", type=int, default=200_000, help="its latencySamples (config key)"
    )
    args = parser.parse_args()
    requests, duration, every = args.requests, args.duration, 5.0
    if args.quick:
        requests, duration, every = 300, 10.0, 1.0
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")

    with server() as (url, _):
        single = asyncio.run(submit_single(url, requests))
    with server() as (url, _):
        batch = asyncio.run(submit_batches(url, requests))
    print(f"submit, single requests ({IN_FLIGHT} in flight): {single:,.0f} tasks/s")
    print(f"submit, batches of {BATCH} ({BATCH_IN_FLIGHT} in flight): {batch:,.0f} tasks/s")

    with server(args.keep_finished, args.latency_samples) as (url, pid):
        print(
            f"sustained server: --keep-finished {args.keep_finished:,}, "
            f"latencySamples {args.latency_samples:,}"
        )
        run = asyncio.run(sustained(url, pid, duration, args.agents, args.slots, every))
    samples = run["samples"]
    rss = [r for _, r, _ in samples]
    half = [(t / 60, r) for t, r, _ in samples[len(samples) // 2 :]]
    rates = sorted(run["interval_rates"])
    print(
        f"end to end, {args.agents} HTTP agents x {args.slots} long-polls, {duration:.0f} s: "
        f"{run['tasks']:,} tasks, {run['tasks_per_s']:,.0f} tasks/s "
        f"(per {every:.0f} s interval: min {rates[0]:,.0f}, median {rates[len(rates) // 2]:,.0f}, "
        f"max {rates[-1]:,.0f})"
    )
    print(
        f"server RSS: start {rss[0]:.1f} MiB, peak {max(rss):.1f} MiB, end {rss[-1]:.1f} MiB; "
        f"slope over the second half {slope(half):+.2f} MiB/min"
    )
    print("samples (s, RSS MiB, completed):")
    print("  " + ", ".join(f"({t:.0f}, {r:.1f}, {c})" for t, r, c in samples))
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
