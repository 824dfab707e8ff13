"""RQ: `queue.enqueue(noop, result_ttl=0)` per task; SimpleWorker runs jobs in the worker
process (no fork per job)."""

from __future__ import annotations

from redis import Redis
from rq import Queue

from peers.common import BIN, Peer, done, ready, redis_url

QUEUE = "bench"


def noop() -> None:
    done()


def hello() -> None:
    ready()


class Producer:
    def __init__(self) -> None:
        self.connection = Redis.from_url(redis_url())
        self.queue = Queue(QUEUE, connection=self.connection)

    async def open(self) -> None:
        pass

    async def hello(self) -> None:
        self.queue.enqueue(hello, result_ttl=0)

    async def send(self, n: int) -> None:
        for _ in range(n):
            self.queue.enqueue(noop, result_ttl=0)

    async def close(self) -> None:
        self.connection.close()


def peer() -> Peer:
    commands = [
        [
            str(BIN / "rq"), "worker", "--url", redis_url(), "-w", "rq.worker.SimpleWorker",
            "--logging_level", "WARNING", "--disable-job-desc-logging", QUEUE,
        ]
        for _ in range(2)
    ]  # fmt: skip
    return Peer("rq", "SimpleWorker, result_ttl=0", commands, Producer)
