"""Tasks per second of no-op work: swarmbalancer's embedded runtime next to the usual ways of
running many small tasks in Python, all measured in the same run on the same machine.

    uv run python benchmarks/overhead.py [--tasks 50000] [--repeat 5] [--strategy adaptive]
        [--peers]

swarmbalancer (2 agents of capacity 64, no-op async handler, default asyncio loop) is measured in
three ways a user would write it: awaited `submit` per task then `join()`; the README's pattern,
awaited `submit` per task then `await asyncio.gather(*handles)`; and the batch call,
`handles = await lb.submit_many(payloads)` then the same gather ("not available" where the
Balancer has no `submit_many` yet); and, without a target of its own, `Balancer.map` (results
in order, as `Executor.map`). Next to them: `ThreadPoolExecutor` at 2, the default
(min(32, cpu + 4)) and 16 workers, the best of which is the baseline; plain `asyncio.gather`
of no-op coroutines (an asyncio Task each); and, for reference, the dispatcher a user could
write in fifteen lines: 128 coroutines pulling (payload, future) pairs from one `asyncio.Queue`,
the futures gathered (no routing, metrics, retries or breakers: the per-task floor of a runner
that returns handles). Each round runs every runner once, starting at a different one each
round; the table shows the median of `--repeat` rounds and its range, each rate over the best
ThreadPoolExecutor's, and PASS/FAIL for the targets of issue 9 (gather of handles >= 1.5x, join
and batch >= 2x). Every swarmbalancer run asserts that its report counts
every task completed and none lost.

`--peers` adds Dask distributed (LocalCluster(processes=False)) and Ray (local, started once on
loopback and reused by every run), where they are installed (`uv sync --group bench`); a peer that
is missing prints "not installed" instead of failing. The peers run after the in-process runners.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from rich.console import Console
from rich.table import Table

from swarmbalancer import Balancer
from swarmbalancer.native import build_label

AGENTS = 2
CAPACITY = 64
DEFAULT_WORKERS = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's own default
#: issue 9's targets, as multiples of the best ThreadPoolExecutor rate
TARGETS = {"join": 2.0, "handles": 1.5, "batch": 2.0}


def noop(x: Any) -> Any:
    return x


async def anoop(task: Any) -> Any:
    return None


def bench_thread_pool(n: int, workers: int) -> float:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        start = perf_counter()
        wait([pool.submit(noop, i) for i in range(n)])
        return n / (perf_counter() - start)


def bench_gather(n: int) -> float:
    async def main() -> float:
        start = perf_counter()
        await asyncio.gather(*(anoop(i) for i in range(n)))
        return n / (perf_counter() - start)

    return asyncio.run(main())


def bench_queue_futures(n: int) -> float:
    """The dispatcher a user could write instead: 2 x 64 consumer coroutines pulling (payload,
    future) pairs from one asyncio.Queue, awaiting the no-op handler and resolving the future;
    the producer gathers the futures. No routing, metrics, retries or breakers: the per-task
    floor of a handle-returning asyncio runner, a reference rather than a target."""

    async def main() -> float:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[Any, asyncio.Future[Any]]] = asyncio.Queue()

        async def consume() -> None:
            while True:
                payload, future = await queue.get()
                future.set_result(await anoop(payload))

        consumers = [asyncio.create_task(consume()) for _ in range(AGENTS * CAPACITY)]
        start = perf_counter()
        futures = []
        for i in range(n):
            future = loop.create_future()
            queue.put_nowait((i, future))
            futures.append(future)
        await asyncio.gather(*futures)
        elapsed = perf_counter() - start
        for consumer in consumers:
            consumer.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        return n / elapsed

    return asyncio.run(main())


def bench_swarmbalancer(n: int, mode: str, strategy: str = "adaptive") -> float | None:
    """One run of `mode` (join, handles, batch or map); None when the Balancer lacks the call."""
    if mode in ("batch", "map") and not hasattr(
        Balancer, "submit_many" if mode == "batch" else mode
    ):
        return None  # the batch calls are newer than this Balancer

    async def main() -> float:
        lb = Balancer({"strategy": strategy, "rebalanceEnabled": False})
        for i in range(AGENTS):
            lb.add_agent(f"a{i}", anoop, capacity=CAPACITY)
        async with lb:
            start = perf_counter()
            if mode == "batch":
                submit_many: Any = getattr(lb, "submit_many", None)
                await asyncio.gather(*await submit_many([None] * n))
            elif mode == "map":
                results = [result async for result in lb.map([None] * n)]
                assert len(results) == n
            elif mode == "handles":
                handles = [await lb.submit(None) for _ in range(n)]
                await asyncio.gather(*handles)
            else:
                for _ in range(n):
                    await lb.submit(None)
                await lb.join()
            elapsed = perf_counter() - start
        report = lb.report()
        assert report["completed"] == n and report["lost"] == 0, report
        return n / elapsed

    return asyncio.run(main())


def bench_dask(n: int) -> float | None:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        return None
    with (
        LocalCluster(
            n_workers=4, threads_per_worker=4, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.gather(client.map(noop, range(100), pure=False))
        start = perf_counter()
        client.gather(client.map(noop, range(n), pure=False))
        return n / (perf_counter() - start)


class RayLocal:
    """Ray on this machine: started on the first run (about 10 s, not timed), reused by the next
    runs, stopped by `close()`. A no-op remote function, measured like Dask."""

    def __init__(self, num_cpus: int = 2) -> None:
        self.num_cpus = num_cpus
        self.remote: Any = None

    def __call__(self, n: int) -> float | None:
        ray = import_ray()
        if ray is None:
            return None
        if self.remote is None:
            ray.init(num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False)
            self.remote = ray.remote(noop)
            ray.get([self.remote.remote(i) for i in range(100)])
        start = perf_counter()
        ray.get([self.remote.remote(i) for i in range(n)])
        return n / (perf_counter() - start)

    def close(self) -> None:
        if self.remote is not None:
            import_ray().shutdown()  # type: ignore[union-attr]
            self.remote = None


def import_ray() -> Any:
    """The `ray` module, or None when it is not installed.

    Ray is kept on loopback (its single-machine mode) and told not to rebuild the `uv run`
    environment for its workers, which already run this interpreter.
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    try:
        import ray
    except ImportError:
        return None
    return ray


@dataclass(frozen=True, slots=True)
class Contender:
    """A runner: `fn(n)` gives one rate, or None when it cannot run here (`missing` says why)."""

    name: str
    fn: Callable[[int], float | None]
    missing: str = "not installed"
    mode: str | None = None  # swarmbalancer's mode, for the targets
    pool: bool = False  # a ThreadPoolExecutor, a candidate for the baseline


def measure(contenders: list[Contender], n: int, repeat: int) -> dict[str, list[float] | None]:
    """Each contender's rates over `repeat` rounds; a round runs every contender once, starting at
    a different one each round, so a machine that slows down or speeds up mid-run weighs on all of
    them alike."""
    rates: dict[str, list[float] | None] = {c.name: [] for c in contenders}
    for r in range(repeat):
        for c in contenders[r % len(contenders) :] + contenders[: r % len(contenders)]:
            seen = rates[c.name]
            if seen is None:
                continue
            gc.collect()  # no runner pays for the garbage another one left
            rate = c.fn(n)
            if rate is None:
                rates[c.name] = None
            else:
                seen.append(rate)
    return rates


def ratio(rate: float | None, base: float | None) -> str:
    return f"{rate / base:.2f}x" if rate and base else "-"


def local_contenders(strategy: str) -> list[Contender]:
    """The in-process runners: three thread pools, asyncio.gather and swarmbalancer's modes."""

    def pool(workers: int) -> Callable[[int], float]:
        return lambda n: bench_thread_pool(n, workers)

    def balancer(mode: str) -> Callable[[int], float | None]:
        return lambda n: bench_swarmbalancer(n, mode, strategy)

    workers = sorted({2, DEFAULT_WORKERS, 16})
    label = {
        w: f"ThreadPoolExecutor({w}{', default' if w == DEFAULT_WORKERS else ''})" for w in workers
    }
    return [
        *(Contender(label[w], pool(w), pool=True) for w in workers),
        Contender("asyncio.gather of coroutines", bench_gather),
        Contender("asyncio.Queue + futures (reference)", bench_queue_futures),
        Contender(f"swarmbalancer {strategy}: join", balancer("join"), mode="join"),
        Contender(f"swarmbalancer {strategy}: gather handles", balancer("handles"), mode="handles"),
        Contender(
            f"swarmbalancer {strategy}: submit_many",
            balancer("batch"),
            missing="not available",
            mode="batch",
        ),
        Contender(f"swarmbalancer {strategy}: map", balancer("map"), missing="not available"),
    ]


def report(
    contenders: list[Contender], samples: dict[str, list[float] | None], n: int, repeat: int
) -> None:
    """The table (best ThreadPoolExecutor in bold, the baseline) and the targets' PASS/FAIL."""
    rates = {name: None if s is None else statistics.median(s) for name, s in samples.items()}
    pools = [c.name for c in contenders if c.pool and rates[c.name]]
    best = max(pools, key=lambda name: rates[name] or 0.0)
    base = rates[best]
    dask = rates.get("dask LocalCluster(processes=False)")
    table = Table(title=f"{n:,} no-op tasks, median of {repeat} interleaved rounds")
    columns = ["runner", "tasks/s", "range", "vs best pool"] + (["vs Dask"] if dask else [])
    for column in columns:
        table.add_column(column, justify="left" if column == "runner" else "right")
    for c in contenders:
        rate, seen = rates[c.name], samples[c.name]
        cells = [
            f"{c.name} (best pool)" if c.name == best else c.name,
            c.missing if rate is None else f"{rate:,.0f}",
            f"{min(seen):,.0f}-{max(seen):,.0f}" if seen else "-",
            ratio(rate, base),
            *([ratio(rate, dask)] if dask else []),
        ]
        table.add_row(*cells, style="bold" if c.name == best else None)
    Console(width=120).print(table)
    print(f"baseline: {best}, the best thread pool; default asyncio loop")
    print(f"swarmbalancer's hot path: {build_label()} (make native compiles it)")
    print("join: submit each, then join(); gather handles: submit each, then gather the handles;")
    print("submit_many: one batch call, then gather the handles; map: results in order")
    for c in contenders:
        if c.mode is None:
            continue
        target, rate = TARGETS[c.mode], rates[c.name]
        if rate is None:
            print(f"SKIP {c.name}: {c.missing}")
            continue
        verdict = "PASS" if base and rate >= target * base else "FAIL"
        print(f"{verdict} {c.name}: {ratio(rate, base)} best ThreadPoolExecutor (>= {target}x)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--strategy", default="adaptive", help="swarmbalancer's strategy")
    parser.add_argument("--peers", action="store_true", help="also Dask and Ray, where installed")
    args = parser.parse_args()
    ray_local = RayLocal()
    local = local_contenders(args.strategy)
    peers = [
        Contender("dask LocalCluster(processes=False)", bench_dask),
        Contender(f"ray local (num_cpus={ray_local.num_cpus})", ray_local),
    ]
    # the peers run after the in-process runners: Ray's processes stay up between its runs and
    # would otherwise slow the others down
    try:
        samples = measure(local, args.tasks, args.repeat)
        if args.peers:
            samples.update(measure(peers, args.tasks, args.repeat))
    finally:
        ray_local.close()
    report(local + peers if args.peers else local, samples, args.tasks, args.repeat)
    if args.peers:
        for peer, module in (("Dask", "distributed"), ("Ray", "ray")):
            if not any(s is None and peer.lower() in name for name, s in samples.items()):
                continue
            print(f"{peer}: not installed (`uv sync --group bench` installs {module})")


if __name__ == "__main__":
    main()
