"""No-op tasks per second through the public API: the memory store next to the SQLite store
(synchronous NORMAL and FULL), in the same run, median of interleaved rounds.

    uv run python benchmarks/durable.py [--tasks 10000] [--repeat 3]

Three ways of submitting, because a durable `submit` returns only once the task is in the file:
`sequential` awaits each submit in turn (one transaction per task: the worst case), `gathered`
has 256 producers submitting at once (their tasks share a transaction, as under real load), and
`batch` awaits `submit_many` of 256 tasks at a time (one transaction per batch).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarmbalancer import Balancer

PRODUCERS = 256
BATCH = 256
MODES = ("sequential", "gathered", "batch")


async def anoop(task: Any) -> None:
    return None


def bench(store: str, n: int, mode: str) -> float:
    async def main() -> float:
        lb = Balancer({"rebalanceEnabled": False}, store=store)
        for i in range(4):
            lb.add_agent(f"a{i}", anoop, capacity=64)
        async with lb:
            start = time.perf_counter()
            if mode == "gathered":
                for first in range(0, n, PRODUCERS):
                    count = min(PRODUCERS, n - first)
                    await asyncio.gather(*(lb.submit(None) for _ in range(count)))
            elif mode == "batch":
                for first in range(0, n, BATCH):
                    await lb.submit_many([None] * min(BATCH, n - first))
            else:
                for _ in range(n):
                    await lb.submit(None)
            await lb.join()
            elapsed = time.perf_counter() - start
        report = lb.report()
        lb.close()
        assert report["completed"] == n and report["lost"] == 0, report
        return n / elapsed

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rates: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        stores: dict[str, Callable[[int], str]] = {
            "memory": lambda r: "memory",
            "sqlite NORMAL": lambda r: f"sqlite:///{Path(folder) / f'n{r}.db'}",
            "sqlite FULL": lambda r: f"sqlite:///{Path(folder) / f'f{r}.db'}?synchronous=full",
        }
        for r in range(args.repeat):
            for mode in MODES:
                for name, make in stores.items():
                    gc.collect()
                    url = make(r).replace(".db", f"-{mode}.db")
                    rate = bench(url, args.tasks, mode)
                    rates.setdefault((name, mode), []).append(rate)
    base = {m: statistics.median(rates[("memory", m)]) for m in MODES}
    print(f"{args.tasks} no-op tasks, 4 agents x 64 slots, median of {args.repeat}")
    print(f"{'store':<15} {'submit':<11} {'tasks/s':>9} {'vs memory':>10} {'spread':>17}")
    for (name, mode), values in rates.items():
        median = statistics.median(values)
        spread = f"{min(values):,.0f}-{max(values):,.0f}"
        print(f"{name:<15} {mode:<11} {median:>9,.0f} {median / base[mode]:>9.2f}x {spread:>17}")


if __name__ == "__main__":
    main()
