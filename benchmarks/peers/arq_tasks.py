"""arq: `await pool.enqueue_job("noop")` per task; its workers poll the queue (a sorted set)
every `poll_delay` seconds (0.5 by default; `BENCH_ARQ_POLL` sets it), results not kept."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings

from peers.common import BIN, Peer, adone, aready, redis_url

POLL_VARIABLE = "BENCH_ARQ_POLL"


async def noop(ctx: dict[str, Any]) -> None:
    await adone()


async def hello(ctx: dict[str, Any]) -> None:
    await aready()


class WorkerSettings:
    functions: ClassVar[list[Any]] = [noop, hello]
    redis_settings = RedisSettings.from_dsn(redis_url())
    poll_delay = float(os.environ.get(POLL_VARIABLE, "0.5"))
    keep_result = 0


class Producer:
    pool: ArqRedis

    async def open(self) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(redis_url()))

    async def hello(self) -> None:
        await self.pool.enqueue_job("hello")

    async def send(self, n: int) -> None:
        for _ in range(n):
            await self.pool.enqueue_job("noop")

    async def close(self) -> None:
        await self.pool.aclose()


def peer(poll: float | None = None) -> Peer:
    commands = [[str(BIN / "arq"), "peers.arq_tasks.WorkerSettings"] for _ in range(2)]
    setting = "poll 0.5 s (default)" if poll is None else f"poll {poll * 1000:g} ms"
    env = () if poll is None else ((POLL_VARIABLE, str(poll)),)
    return Peer("arq", f"{setting}, keep_result=0", commands, Producer, env)
