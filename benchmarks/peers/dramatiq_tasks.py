"""dramatiq with its Redis broker: `noop.send()` per task; one `dramatiq --processes 2` (its
default 8 threads per process)."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from peers.common import BIN, Peer, done, ready, redis_url

broker = RedisBroker(url=redis_url())  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)


@dramatiq.actor(max_retries=0)
def noop() -> None:
    done()


@dramatiq.actor(max_retries=0)
def hello() -> None:
    ready()


class Producer:
    async def open(self) -> None:
        pass

    async def hello(self) -> None:
        hello.send()

    async def send(self, n: int) -> None:
        for _ in range(n):
            noop.send()

    async def close(self) -> None:
        broker.close()


def peer() -> Peer:
    commands = [[str(BIN / "dramatiq"), "peers.dramatiq_tasks", "--processes", "2"]]
    return Peer("dramatiq", "--processes 2, 8 threads each (default)", commands, Producer)
