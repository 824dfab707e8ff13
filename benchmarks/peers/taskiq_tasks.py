"""taskiq with taskiq-redis's ListQueueBroker (a Redis list, blocking pops) and no result
backend: `await noop.kiq()` per task; one `taskiq worker --workers 2`."""

from __future__ import annotations

from taskiq_redis import ListQueueBroker

from peers.common import BIN, Peer, adone, aready, redis_url

broker = ListQueueBroker(redis_url(), queue_name="bench")


@broker.task
async def noop() -> None:
    await adone()


@broker.task
async def hello() -> None:
    await aready()


class Producer:
    async def open(self) -> None:
        await broker.startup()

    async def hello(self) -> None:
        await hello.kiq()

    async def send(self, n: int) -> None:
        for _ in range(n):
            await noop.kiq()

    async def close(self) -> None:
        await broker.shutdown()


def peer() -> Peer:
    commands = [
        [
            str(BIN / "taskiq"), "worker", "peers.taskiq_tasks:broker", "--workers", "2",
            "--log-level", "WARNING",
        ]
    ]  # fmt: skip
    return Peer("taskiq", "ListQueueBroker, --workers 2, no result backend", commands, Producer)
