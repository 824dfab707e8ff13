"""No-op tasks per second end to end across processes over one Redis: swarmbalancer's
coordinator and workers next to Celery, RQ, arq, dramatiq, saq and taskiq, all on the same local
redis-server in the same run; and, with `--balance`, the heterogeneous swarm of balance_api.py as
worker processes.

    ./scripts/uv run --frozen --group distbench python benchmarks/distbench.py
        [--tasks 10000] [--repeat 3] [--runners celery,swarm] [--capacity 64] [--celery-pool solo]
    ./scripts/uv run --frozen --group distbench python benchmarks/distbench.py --balance
        [--tasks 1000] [--repeat 3] [--seed 7]

One redis-server, started here on a free loopback port (appendonly yes, appendfsync everysec),
FLUSHALL before every run. A run starts its worker processes (2 for every runner), waits until
both ran a warm-up task, then times one producer from its first enqueue to the moment it knows
the last task finished, then stops every process it started. The producer enqueues one task at a
time with each peer's usual call (benchmarks/peers/*_tasks.py say which, and each peer's
setting). Peers' tasks count themselves in one Redis counter, the same for every peer (one
script call: INCR, and at n a push the producer waits for in BLPOP): their results are not
cheap to wait for one by one (a poll or a subscription per task). swarmbalancer
(`swarmbalancer coordinator` and 2 `swarmbalancer worker` processes, an async handler returning
its payload) is timed two ways, both with results: `await client.submit(i)` per task then
gather the handles, and one `client.submit_many` of all of them;
each run checks that every handle resolved with its own payload (0 lost). Next to them, the
embedded Balancer's tasks/s with the memory store and with SQLite (benchmarks/durable.py's
measurement). Each round runs every runner once, starting at a different one each round; the
table shows the median of `--repeat` rounds and its range, and the issue's target: swarmbalancer
>= 20,000 tasks/s end to end.

`--balance`: scenario 1 of balance_api.py with handlers sleeping to absolute per-slot deadlines
(12 agents, 6 at speed 1, 3 at 2, 3 at 4, capacity 1; Pareto tasks with estimates, one burst),
as 12 `swarmbalancer worker` processes, each told its speed by `BENCH_SPEED` (its handler knows
it, the balancer does not). Its makespan over balance_api's lower bound is printed next to the
embedded runtime's on the same task sets in the same run; the target: within 10% of it.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from time import perf_counter
from types import FrameType
from typing import Any

import redis.asyncio as aioredis
from rich.console import Console
from rich.table import Table

import balance_api
import durable
from peers.common import (
    DONE,
    FINISHED,
    READY,
    TARGET,
    URL_VARIABLE,
    Peer,
    Processes,
    Producer,
    start_redis,
    worker_env,
)
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.native import build_label

WORKERS = 2
RATE_TARGET = 20_000  # tasks/s end to end, issue 11
BALANCE_TOLERANCE = 1.10  # distributed makespan/LB over the embedded one's
SWARM_ID = "bench"
READY_TIMEOUT = 60.0  # seconds for a run's processes to start and take a warm-up task
WARMUP = 100


class Unavailable(Exception):
    """The runner cannot run here (not installed, not built yet); the table says why."""


class RunFailed(Exception):
    """A run did not finish, or finished with tasks lost; the table and a FAIL line say so."""


# -- the peers ---------------------------------------------------------------------------------


async def run_peer(peer: Peer, url: str, n: int, budget: float, logs: Path) -> float:
    """One run of a peer: FLUSHALL, its workers up, n no-op tasks timed to the counter's n."""
    r = aioredis.Redis.from_url(url)
    try:
        await r.flushall()
        with Processes(logs) as processes:
            env = worker_env(**dict(peer.env))
            for k, argv in enumerate(peer.commands):
                processes.start(f"{peer.name}{k}", argv, env)
            producer = peer.producer()
            await producer.open()
            try:
                await until_warm(r, producer, processes)
                await r.delete(DONE, FINISHED)
                await r.set(TARGET, n)
                start = perf_counter()
                await producer.send(n)
                await until_counted(r, n, processes, budget)
                elapsed = perf_counter() - start
                if (count := int(await r.get(DONE) or 0)) != n:
                    raise RunFailed(f"the counter reached {count:,} for {n:,} tasks")
            finally:
                await producer.close()
    finally:
        await r.aclose()
    return n / elapsed


async def until_warm(r: aioredis.Redis, producer: Producer, processes: Processes) -> None:
    """Send warm-up tasks (one per 100 ms) until both worker processes ran one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT
    while await r.scard(READY) < WORKERS:
        processes.check()
        if loop.time() > deadline:
            raise RunFailed(f"the workers took no warm-up task in {READY_TIMEOUT:g} s")
        await producer.hello()
        await asyncio.sleep(0.1)


async def until_counted(r: aioredis.Redis, n: int, processes: Processes, budget: float) -> None:
    """Wait, in blocking pops of half a second, for the task that counts the n-th to say so."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    while not await r.blpop([FINISHED], timeout=0.5):
        processes.check()
        if loop.time() > deadline:
            count = int(await r.get(DONE) or 0)
            raise RunFailed(f"{count:,} of {n:,} tasks done after {budget:g} s")


# -- swarmbalancer across processes ------------------------------------------------------------


@functools.cache
def has_command(name: str) -> bool:
    """Does this swarmbalancer have the `name` command?"""
    argv = [sys.executable, "-m", "swarmbalancer", name, "--help"]
    return subprocess.run(argv, capture_output=True, timeout=120).returncode == 0


def swarm_client() -> Any:
    """swarmbalancer's `Client`, or Unavailable while the Redis client or the coordinator and
    worker commands are not built yet."""
    client = getattr(importlib.import_module("swarmbalancer"), "Client", None)
    missing = [f"`swarmbalancer {c}`" for c in ("coordinator", "worker") if not has_command(c)]
    if client is None:
        missing.insert(0, "swarmbalancer.Client")
    if missing:
        raise Unavailable(f"not available yet (no {', '.join(missing)})")
    return client


def swarm_command(command: str, url: str, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "swarmbalancer", command, "--store", url, "--swarm-id", SWARM_ID,
        *args,
    ]  # fmt: skip


def start_swarm(
    processes: Processes, url: str, handler: str, workers: Sequence[tuple[int, dict[str, str]]]
) -> None:
    """A coordinator and one worker per (capacity, extra environment), named w0, w1, ..."""
    processes.start("coordinator", swarm_command("coordinator", url), worker_env())
    for k, (capacity, env) in enumerate(workers):
        argv = swarm_command(
            "worker", url, "--handler", handler, "--capacity", str(capacity), "--id", f"w{k}"
        )
        processes.start(f"w{k}", argv, worker_env(**env))


async def until_registered(r: aioredis.Redis, count: int, processes: Processes) -> None:
    """Wait until `count` workers registered, then until the leader's report lists them (or
    three seconds passed, for a leader that publishes no report)."""
    loop = asyncio.get_running_loop()
    keys = SwarmKeys(SWARM_ID)
    deadline = loop.time() + READY_TIMEOUT
    while await r.hlen(keys.agents) < count:
        processes.check()
        if loop.time() > deadline:
            raise RunFailed(f"fewer than {count} workers registered in {READY_TIMEOUT:g} s")
        await asyncio.sleep(0.05)
    grace = loop.time() + 3.0  # the leader publishes its report every second
    while loop.time() < grace:
        raw = await r.get(keys.report)
        if raw and len(json.loads(raw).get("per_agent") or ()) >= count:
            return
        await asyncio.sleep(0.05)


async def wait_all(handles: Sequence[Any], processes: Processes, budget: float) -> None:
    """Wait for every handle, checking the processes twice a second; RunFailed naming how many
    are unresolved after `budget` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    pending = set(handles)
    while pending:
        processes.check()
        if loop.time() > deadline:
            raise RunFailed(f"lost: {len(pending):,} of {len(handles):,} handles unresolved")
        _, pending = await asyncio.wait(pending, timeout=0.5)


def check_results(handles: Sequence[Any], payloads: Sequence[Any]) -> None:
    """RunFailed unless every handle resolved with its own payload."""
    wrong = sum(
        1
        for h, p in zip(handles, payloads, strict=True)
        if h.cancelled() or h.exception() is not None or h.result() != p
    )
    if wrong:
        raise RunFailed(f"lost: {wrong:,} of {len(handles):,} handles without their result")


async def run_swarm(
    batch: bool, url: str, n: int, capacity: int, budget: float, logs: Path
) -> float:
    """One run of swarmbalancer: FLUSHALL, a coordinator and 2 workers, n payloads echoed."""
    client_class = swarm_client()
    r = aioredis.Redis.from_url(url)
    try:
        await r.flushall()
        with Processes(logs) as processes:
            start_swarm(processes, url, "peers.swarm_tasks:echo", [(capacity, {})] * WORKERS)
            async with client_class(url, SWARM_ID) as client:
                await until_registered(r, WORKERS, processes)
                warm = await client.submit_many(list(range(WARMUP)))
                await wait_all(warm, processes, READY_TIMEOUT)
                payloads = list(range(n))
                start = perf_counter()
                if batch:
                    handles = await client.submit_many(payloads)
                else:
                    handles = [await client.submit(i) for i in payloads]
                await wait_all(handles, processes, budget)
                elapsed = perf_counter() - start
                check_results(handles, payloads)
    finally:
        await r.aclose()
    return n / elapsed


# -- runners and rounds ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Runner:
    """A row of the table: `run(n)` gives one rate, or raises Unavailable or RunFailed."""

    name: str
    setting: str
    kind: str  # peer, swarm or embedded
    run: Callable[[int], float]


@dataclass(slots=True)
class Samples:
    """A runner's rates over the rounds, or why it has none (or fewer)."""

    rates: list[float] = field(default_factory=list)
    unavailable: str | None = None
    failed: str | None = None


PEERS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("celery", "celery_tasks", {}),
    ("rq", "rq_tasks", {}),
    ("arq", "arq_tasks", {}),
    ("arq", "arq_tasks", {"poll": 0.01}),
    ("dramatiq", "dramatiq_tasks", {}),
    ("saq", "saq_tasks", {}),
    ("taskiq", "taskiq_tasks", {}),
)


def unavailable(reason: str) -> Callable[[int], float]:
    def run(n: int) -> float:
        raise Unavailable(reason)

    return run


def peer_runners(args: argparse.Namespace, url: str, logs: Path) -> list[Runner]:
    """A runner per peer setting; a peer whose package is missing says so."""
    out = []
    for name, module, options in PEERS:
        if name == "celery":
            options = {"pool": args.celery_pool}
        try:
            peer: Peer = importlib.import_module(f"peers.{module}").peer(**options)
        except ImportError as error:
            reason = f"not installed ({error.name}; `uv sync --group distbench`)"
            out.append(Runner(name, "-", "peer", unavailable(reason)))
            continue

        def run(n: int, peer: Peer = peer) -> float:
            return asyncio.run(run_peer(peer, url, n, args.budget, logs))

        out.append(Runner(peer.name, peer.setting, "peer", run))
    return out


def swarm_runners(args: argparse.Namespace, url: str, logs: Path) -> list[Runner]:
    setting = f"coordinator + 2 workers, capacity {args.capacity}, async handler"

    def runner(batch: bool) -> Callable[[int], float]:
        return lambda n: asyncio.run(run_swarm(batch, url, n, args.capacity, args.budget, logs))

    return [
        Runner("swarmbalancer: submit each", setting, "swarm", runner(False)),
        Runner("swarmbalancer: submit_many", setting, "swarm", runner(True)),
    ]


def embedded_runners(folder: Path) -> list[Runner]:
    """durable.py's measurement: the embedded Balancer (4 agents x 64 slots) with each store."""
    files = iter(range(1_000_000))

    def runner(sqlite: bool, mode: str) -> Callable[[int], float]:
        def run(n: int) -> float:
            store = f"sqlite:///{folder / f'embedded-{next(files)}.db'}" if sqlite else "memory"
            return durable.bench(store, n, mode)

        return run

    words = {"sequential": "submit each, join", "batch": f"submit_many of {durable.BATCH}"}
    return [
        Runner(
            f"embedded {store}: {mode}", words[mode], "embedded", runner(store == "sqlite", mode)
        )
        for mode in ("sequential", "batch")
        for store in ("memory", "sqlite")
    ]


def measure(runners: list[Runner], n: int, repeat: int) -> dict[str, Samples]:
    """Every runner once per round, each round starting at a different one; a runner that is
    unavailable or failed is not run again."""
    samples = {r.name + r.setting: Samples() for r in runners}
    for k in range(repeat):
        for runner in runners[k % len(runners) :] + runners[: k % len(runners)]:
            seen = samples[runner.name + runner.setting]
            if seen.unavailable or seen.failed:
                continue
            gc.collect()
            try:
                seen.rates.append(runner.run(n))
            except Unavailable as why:
                seen.unavailable = str(why)
            except (RunFailed, RuntimeError) as why:  # RuntimeError: a process exited
                seen.failed = str(why)
            print(f"  {runner.name} ({runner.setting}): {describe(seen)}", file=sys.stderr)
    return samples


def describe(s: Samples) -> str:
    if s.rates:
        return f"{s.rates[-1]:,.0f}/s"
    return s.unavailable or f"FAILED: {s.failed}"


def short(reason: str | None) -> str:
    """The table's words for why a runner did not run: the reason without its details."""
    return (reason or "-").split(" (")[0]


def ratio(rate: float | None, base: float | None) -> str:
    return f"{rate / base:.2f}x" if rate and base else "-"


def report(runners: Sequence[Runner], samples: dict[str, Samples], n: int, repeat: int) -> bool:
    """The table and the target lines; False when a swarmbalancer run failed or lost tasks."""
    median = {
        key: statistics.median(s.rates) if s.rates and not s.failed else None
        for key, s in samples.items()
    }
    keyed = [(r, r.name + r.setting) for r in runners]
    celery = next((median[k] for r, k in keyed if r.name == "celery"), None)
    peers = [(median[k], r) for r, k in keyed if r.kind == "peer" and median[k]]
    fastest_rate, fastest = max(peers, key=lambda p: p[0] or 0.0, default=(None, None))
    table = Table(title=f"{n:,} no-op tasks end to end, one producer; median of {repeat} rounds")
    for column in ("runner", "setting", "tasks/s", "range", "vs Celery", "vs fastest peer"):
        table.add_column(column, justify="left" if column in ("runner", "setting") else "right")
    for r, key in keyed:
        s, rate = samples[key], median[key]
        shown = f"{rate:,.0f}" if rate else "FAILED" if s.failed else short(s.unavailable)
        spread = f"{min(s.rates):,.0f}-{max(s.rates):,.0f}" if s.rates and rate else "-"
        cells = (r.name, r.setting, shown, spread, ratio(rate, celery), ratio(rate, fastest_rate))
        table.add_row(*cells, style="bold" if r.kind == "swarm" else None)
    Console(width=160).print(table)
    for r, key in keyed:
        s = samples[key]
        if r.kind != "swarm" and (s.failed or s.unavailable):
            print(f"{r.name} ({r.setting}): {f'FAILED: {s.failed}' if s.failed else s.unavailable}")
    if fastest is not None:
        print(f"fastest peer: {fastest.name} ({fastest.setting})")
    print(
        f"completion: each peer task INCRs one Redis counter ({DONE}; one script call, which"
        f" pushes to {FINISHED} at n, where the producer waits in BLPOP); swarmbalancer awaits"
        " every handle and checks its result"
    )
    print("embedded: benchmarks/durable.py's Balancer (4 agents x 64 slots), no Redis")
    ok = True
    for r, key in keyed:
        s, rate = samples[key], median[key]
        if r.kind != "swarm":
            continue
        if s.unavailable:
            print(f"SKIP {r.name}: {s.unavailable}")
            continue
        ok = ok and rate is not None
        verdict = "PASS" if rate and rate >= RATE_TARGET else "FAIL"
        figure = f"{rate:,.0f} tasks/s" if rate else f"failed ({s.failed})"
        print(
            f"{verdict} {r.name}: {figure} end to end (>= {RATE_TARGET:,}); "
            f"{ratio(rate, celery)} Celery, {ratio(rate, fastest_rate)} the fastest peer"
        )
    by_name = {r.name: median[k] for r, k in keyed}
    for mode in ("sequential", "batch"):
        memory, sqlite = (
            by_name.get(f"embedded memory: {mode}"),
            by_name.get(f"embedded sqlite: {mode}"),
        )
        if memory and sqlite:
            print(f"embedded SQLite / memory, {mode}: {ratio(sqlite, memory)}")
    return ok


# -- the heterogeneous swarm as worker processes -----------------------------------------------


async def run_balance(
    url: str, jobs: Sequence[balance_api.Job], agents: Sequence[balance_api.AgentShape],
    budget: float, logs: Path,
) -> float:  # fmt: skip
    """The makespan of one burst of `jobs` (with estimates) on one worker per agent, each
    knowing its speed from its environment."""
    client_class = swarm_client()
    job_class = importlib.import_module("swarmbalancer").Job
    r = aioredis.Redis.from_url(url)
    try:
        await r.flushall()
        with Processes(logs) as processes:
            workers = [(a.capacity, {"BENCH_SPEED": str(a.speed)}) for a in agents]
            start_swarm(processes, url, "peers.swarm_tasks:work", workers)
            async with client_class(url, SWARM_ID) as client:
                await until_registered(r, len(agents), processes)
                batch = [job_class(j.work, estimate=j.work) for j in jobs]
                start = perf_counter()
                handles = await client.submit_many(batch)
                await wait_all(handles, processes, budget)
                makespan = perf_counter() - start
                check_results(handles, [None] * len(jobs))
    finally:
        await r.aclose()
    return makespan


def balance(args: argparse.Namespace, url: str, logs: Path) -> bool:
    """`--balance`: makespan / LB of the worker processes next to the embedded runtime's, on
    the same task sets (round r draws seed + r); False when a distributed run failed."""
    # the workers cannot be given a weight, so the embedded runtime is not given one either;
    # balance_api's own setting (weight=speed) is shown for reference
    weighted = balance_api.SCENARIOS["deadlines"]
    scenario = replace(weighted, weighted=False)
    n = args.tasks or 1000

    def embedded(s: balance_api.Scenario) -> Callable[[list[balance_api.Job]], float]:
        return lambda jobs: asyncio.run(balance_api.run_balancer("adaptive", s, jobs)).makespan

    def workers(jobs: list[balance_api.Job]) -> float:
        return asyncio.run(run_balance(url, jobs, scenario.agents, args.budget, logs))

    runs: dict[str, Callable[[list[balance_api.Job]], float]] = {
        "swarmbalancer: 12 worker processes": workers,
        "embedded adaptive, no weights": embedded(scenario),
        "embedded adaptive, weight=speed (reference)": embedded(weighted),
    }
    names = list(runs)
    ratios: dict[str, list[float]] = {name: [] for name in names}
    makespans: dict[str, list[float]] = {name: [] for name in names}
    why: dict[str, str] = {}
    bounds = []
    for k in range(args.repeat):
        jobs = balance_api.make_jobs(scenario, n, args.seed + k)
        bound = balance_api.lower_bound(jobs, scenario.agents)
        bounds.append(bound)
        for name in names[k % len(names) :] + names[: k % len(names)]:
            if name in why:
                continue
            gc.collect()
            try:
                makespan = runs[name](jobs)
            except Unavailable as reason:
                why[name] = str(reason)
                continue
            except (RunFailed, RuntimeError) as reason:
                why[name] = f"FAILED: {reason}"
                continue
            makespans[name].append(makespan)
            ratios[name].append(makespan / bound)
            print(f"  {name}: {makespan:.3f} s, LB {bound:.3f} s", file=sys.stderr)
    seeds = f"seeds {args.seed}..{args.seed + args.repeat - 1}"
    table = Table(
        title=f"{scenario.summary}; {n} tasks, {seeds}, LB {statistics.median(bounds):.3f} s"
    )
    for column in ("runner", "makespan (s)", "makespan/LB", "range"):
        table.add_column(column, justify="left" if column == "runner" else "right")
    for name in names:
        q = ratios[name]
        if name in why or not q:
            table.add_row(name, short(why.get(name)), "-", "-")
            continue
        median = f"{statistics.median(makespans[name]):.3f}"
        table.add_row(name, median, f"{statistics.median(q):.3f}", f"{min(q):.2f}-{max(q):.2f}")
    Console(width=140).print(table)
    print("medians over the rounds; LB: balance_api's arrival-aware lower bound, true speeds")
    mine, theirs = ratios[names[0]], ratios[names[1]]
    if names[0] in why:
        unavailable_only = not why[names[0]].startswith("FAILED")
        print(f"{'SKIP' if unavailable_only else 'FAIL'} {names[0]}: {why[names[0]]}")
        return unavailable_only
    paired = statistics.median(a / b for a, b in zip(mine, theirs, strict=True))
    verdict = "PASS" if paired <= BALANCE_TOLERANCE else "FAIL"
    print(
        f"{verdict} worker processes' makespan/LB over the embedded one's (no weights): "
        f"{paired:.3f} (<= {BALANCE_TOLERANCE}, median of the rounds' pairs)"
    )
    return True


# -- main --------------------------------------------------------------------------------------


def interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGHUP end the run as Ctrl-C does, through every `finally`."""
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, help="default 10,000 (1,000 with --balance)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runners", help="comma-separated parts of runner names")
    parser.add_argument("--capacity", type=int, default=64, help="swarmbalancer worker slots")
    parser.add_argument("--celery-pool", default="solo", help="solo, threads, prefork, ...")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds a run may take")
    parser.add_argument("--balance", action="store_true", help="the heterogeneous swarm")
    parser.add_argument("--seed", type=int, default=7, help="--balance: round r uses seed+r")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with it ignored
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    if not shutil.which("redis-server"):
        raise SystemExit("redis-server is not installed (`make services` installs it)")
    print(f"swarmbalancer's hot path: {build_label()} (make native compiles it)")
    try:
        ok = run(args)
    except KeyboardInterrupt:
        print("interrupted: every process this run started is stopped", file=sys.stderr)
        raise SystemExit(130) from None
    if not ok:
        raise SystemExit(1)


def run(args: argparse.Namespace) -> bool:
    """The whole benchmark on one redis-server of its own, stopped last whatever happens."""
    with (
        tempfile.TemporaryDirectory(prefix="distbench-") as tmp,
        Processes(Path(tmp)) as server,
    ):
        folder = Path(tmp)
        logs = folder / "logs"
        logs.mkdir()
        url = start_redis(server, folder / "redis")
        os.environ[URL_VARIABLE] = url  # the peers' modules read it on import
        load = os.getloadavg()[0]
        if args.balance:
            ok = balance(args, url, logs)
        else:
            n = args.tasks or 10_000
            runners = [
                *peer_runners(args, url, logs),
                *swarm_runners(args, url, logs),
                *embedded_runners(folder),
            ]
            chosen = [r for r in runners if pick(args.runners, r.name)]
            ok = report(chosen, measure(chosen, n, args.repeat), n, args.repeat)
        print(
            f"machine: {os.cpu_count()} cores; 1-minute load average {load:.1f} at the start,"
            f" {os.getloadavg()[0]:.1f} at the end"
        )
        return ok


def pick(parts: str | None, name: str) -> bool:
    """Is `name` chosen by --runners (every runner when it is not given)?"""
    return parts is None or any(p.strip() and p.strip() in name for p in parts.split(","))


if __name__ == "__main__":
    main()
