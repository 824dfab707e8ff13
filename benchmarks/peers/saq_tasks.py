"""saq: `await queue.enqueue("noop")` per task; one `saq --workers 2` (concurrency 10 each, its
default)."""

from __future__ import annotations

from typing import Any

from saq import Queue

from peers.common import BIN, Peer, adone, aready, redis_url

queue = Queue.from_url(redis_url(), name="bench")


async def noop(ctx: dict[str, Any]) -> None:
    await adone()


async def hello(ctx: dict[str, Any]) -> None:
    await aready()


settings = {"queue": queue, "functions": [noop, hello], "concurrency": 10}


class Producer:
    async def open(self) -> None:
        await queue.connect()

    async def hello(self) -> None:
        await queue.enqueue("hello")

    async def send(self, n: int) -> None:
        for _ in range(n):
            await queue.enqueue("noop")

    async def close(self) -> None:
        await queue.disconnect()


def peer() -> Peer:
    commands = [[str(BIN / "saq"), "peers.saq_tasks.settings", "--workers", "2", "--quiet"]]
    return Peer("saq", "--workers 2, concurrency 10 (default)", commands, Producer)
