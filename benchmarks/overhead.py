"""Tasks per second of no-op work: swarmbalancer's embedded runtime next to the usual ways of
running many small tasks in Python, all measured in the same run on the same machine.

    uv run python benchmarks/overhead.py [--tasks 50000] [--repeat 5] [--peers]

Prints a table and each rate as a ratio of ThreadPoolExecutor's (and of Dask's with `--peers`).
`--peers` adds Dask distributed (LocalCluster(processes=False)) and Ray (local, started once on
loopback and reused by every run), where they are installed (`uv sync --group bench`); a peer that
is missing prints "not installed" instead of failing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from swarmbalancer import Balancer


def noop(x: Any) -> Any:
    return x


async def anoop(task: Any) -> Any:
    return None


def bench_thread_pool(n: int) -> float:
    with ThreadPoolExecutor(max_workers=16) as pool:
        start = time.perf_counter()
        wait([pool.submit(noop, i) for i in range(n)])
        return n / (time.perf_counter() - start)


def bench_gather(n: int) -> float:
    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(anoop(i) for i in range(n)))
        return n / (time.perf_counter() - start)

    return asyncio.run(main())


def bench_swarmbalancer(n: int, strategy: str = "adaptive", agents: int = 4) -> float:
    async def main() -> float:
        lb = Balancer({"strategy": strategy, "rebalanceEnabled": False})
        for i in range(agents):
            lb.add_agent(f"a{i}", anoop, capacity=64)
        async with lb:
            start = time.perf_counter()
            for _ in range(n):
                await lb.submit(None)
            await lb.join()
            elapsed = time.perf_counter() - start
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
        start = time.perf_counter()
        client.gather(client.map(noop, range(n), pure=False))
        return n / (time.perf_counter() - start)


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
        start = time.perf_counter()
        ray.get([self.remote.remote(i) for i in range(n)])
        return n / (time.perf_counter() - start)

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


def measure(
    contenders: list[tuple[str, Callable[[int], float | None]]], n: int, repeat: int
) -> dict[str, list[float] | None]:
    """Each contender's rates over `repeat` rounds; a round runs every contender once, so a
    machine that slows down or speeds up mid-run weighs on all of them alike."""
    rates: dict[str, list[float] | None] = {name: [] for name, _ in contenders}
    for _ in range(repeat):
        for name, fn in contenders:
            seen = rates[name]
            if seen is None:
                continue
            gc.collect()  # no runner pays for the garbage another one left
            rate = fn(n)
            if rate is None:
                rates[name] = None
            else:
                seen.append(rate)
    return rates


def ratio(rate: float | None, base: float | None) -> str:
    return f"{rate / base:.2f}x" if rate and base else "-"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--peers", action="store_true", help="also Dask and Ray, where installed")
    args = parser.parse_args()
    ray_local = RayLocal()
    local: list[tuple[str, Callable[[int], float | None]]] = [
        ("ThreadPoolExecutor(16)", bench_thread_pool),
        ("asyncio.gather (floor)", bench_gather),
        ("swarmbalancer adaptive", bench_swarmbalancer),
        ("swarmbalancer round_robin", lambda n: bench_swarmbalancer(n, "round_robin")),
    ]
    peers: list[tuple[str, Callable[[int], float | None]]] = [
        ("dask LocalCluster(processes=False)", bench_dask),
        (f"ray local (num_cpus={ray_local.num_cpus})", ray_local),
    ]
    # the peers run after the in-process runners: Ray's processes stay up between its runs and
    # would otherwise slow the others down
    try:
        samples = measure(local, args.tasks, args.repeat)
        if args.peers:
            samples.update(measure(peers, args.tasks, args.repeat))
    finally:
        ray_local.close()
    rates = {name: None if s is None else statistics.median(s) for name, s in samples.items()}
    base = rates["ThreadPoolExecutor(16)"]
    dask = rates.get("dask LocalCluster(processes=False)")
    print(f"{args.tasks} no-op tasks, median of {args.repeat} interleaved rounds")
    print(f"{'runner':<38}{'tasks/s':>14}{'range':>22}{'vs ThreadPoolExecutor':>24}{'vs Dask':>10}")
    for name, rate in rates.items():
        seen = samples[name]
        shown = "not installed" if rate is None else f"{rate:,.0f}"
        spread = f"{min(seen):,.0f}-{max(seen):,.0f}" if seen else "-"
        print(f"{name:<38}{shown:>14}{spread:>22}{ratio(rate, base):>24}{ratio(rate, dask):>10}")
    if args.peers:
        for peer, module in (("Dask", "distributed"), ("Ray", "ray")):
            if not any(rate is None and peer.lower() in name for name, rate in rates.items()):
                continue
            print(f"{peer}: not installed (`uv sync --group bench` installs {module})")


if __name__ == "__main__":
    main()
