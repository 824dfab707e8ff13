"""Run by tests/store/test_crash.py in a subprocess, which kills it with SIGKILL mid-run.

    python crash_child.py DB LOG TASKS

A durable Balancer on DB (a SQLite file, or a store URL) runs TASKS tasks (16 slots, a 5 ms
handler), submitted by 500 concurrent producers at a time. LOG gets one line per event,
written straight to the file (os.write), so what the OS has when the process dies is exact:
`S id` once `submit` returned, `B id` when an attempt began, `E id` when it returned.
"""

from __future__ import annotations

import asyncio
import os
import sys

from swarmbalancer import Balancer, Task


async def main(db: str, log: str, count: int) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    async def handler(task: Task) -> int:
        os.write(fd, f"B {task.id}\n".encode())
        await asyncio.sleep(0.005)
        os.write(fd, f"E {task.id}\n".encode())
        return int(task.payload["n"]) * 2

    store = db if "://" in db else f"sqlite:///{db}"
    lb = Balancer({"maxRetries": 3, "rebalanceEnabled": False}, store=store)
    for i in range(4):
        lb.add_agent(f"a{i}", handler, capacity=4)

    async def submit(i: int) -> None:
        await lb.submit({"n": i}, task_id=f"t{i}")
        os.write(fd, f"S t{i}\n".encode())

    async with lb:
        for first in range(0, count, 500):  # 500 producers at a time: queues build up
            await asyncio.gather(*(submit(i) for i in range(first, min(first + 500, count))))
        await lb.join()
    os.write(fd, b"DONE\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
