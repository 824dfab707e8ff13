"""Celery with its Redis broker and no result backend: `noop.delay()` per task; the worker runs
the solo pool by default (no hand-off between threads or processes: the fastest for no-op
tasks), or the one distbench.py's `--celery-pool` names."""

from __future__ import annotations

from celery import Celery  # type: ignore[import-untyped]

from peers.common import BIN, Peer, done, ready, redis_url

app = Celery("bench", broker=redis_url())
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=16,
)


@app.task  # type: ignore[untyped-decorator]
def noop() -> None:
    done()


@app.task  # type: ignore[untyped-decorator]
def hello() -> None:
    ready()


class Producer:
    async def open(self) -> None:
        pass

    async def hello(self) -> None:
        hello.delay()

    async def send(self, n: int) -> None:
        for _ in range(n):
            noop.delay()

    async def close(self) -> None:
        app.close()


def peer(pool: str = "solo") -> Peer:
    concurrency = "1" if pool == "solo" else "8"
    commands = [
        [
            str(BIN / "celery"), "-A", "peers.celery_tasks", "worker", "-n", f"w{k}@%h",
            "--pool", pool, "--concurrency", concurrency, "--loglevel", "WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        for k in range(2)
    ]  # fmt: skip
    setting = f"pool={pool}, concurrency {concurrency}, prefetch x16, no result backend"
    return Peer("celery", setting, commands, Producer)
