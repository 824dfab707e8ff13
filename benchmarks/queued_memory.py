"""Bytes per queued no-op task in the embedded runtime, by tracemalloc, with the biggest sources.

    uv run python benchmarks/queued_memory.py [--tasks 100000] [--top 12]

One agent blocks on an event, so every task but the first stays queued; the traced bytes after
`gc.collect()`, over the number of tasks, are the cost of a waiting task (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tracemalloc
from typing import Any

from swarmbalancer import Balancer


async def measure(n: int, top: int) -> None:
    gate = asyncio.Event()

    async def blocked(task: Any) -> None:
        await gate.wait()

    lb = Balancer({"rebalanceEnabled": False})
    lb.add_agent("a", blocked, capacity=1)
    async with lb:
        await lb.submit(None)  # the one that runs
        await asyncio.sleep(0)
        gc.collect()
        tracemalloc.start(1)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(n):
            await lb.submit(None)
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{n} queued no-op tasks: {(current - before) / n:.0f} bytes each")
        print(f"traced peak during submission: {(peak - before) / 2**20:.1f} MiB")
        for stat in snapshot.statistics("lineno")[:top]:
            frame = stat.traceback[0]
            where = frame.filename.split("/src/")[-1]
            print(f"  {stat.size / n:7.1f} B/task  {where}:{frame.lineno}")
        gate.set()
        await lb.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    asyncio.run(measure(args.tasks, args.top))


if __name__ == "__main__":
    main()
