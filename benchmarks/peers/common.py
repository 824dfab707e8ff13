"""What every peer module shares: the Redis keys its tasks touch, the `Peer` description the
benchmark runs, and the processes a run starts (each in its own process group, all stopped
whatever happens).

A peer's no-op task calls `done()` (or `adone()`): one script call that INCRs `DONE` and, when
that reaches the `TARGET` the producer set, pushes to `FINISHED`, where the producer waits with a
blocking pop (the same for every peer; no polling). Its warm-up task adds its process id to
`READY` (the producer starts timing once both worker processes have run one).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

import redis
import redis.asyncio as aioredis

#: the benchmark's redis-server, set by benchmarks/distbench.py for itself and its workers
URL_VARIABLE = "BENCH_REDIS_URL"
DONE = "bench:done"
TARGET = "bench:target"
FINISHED = "bench:finished"
READY = "bench:ready"
#: KEYS: DONE, TARGET, FINISHED
COUNT = """
local done = redis.call('INCR', KEYS[1])
if done == tonumber(redis.call('GET', KEYS[2])) then redis.call('RPUSH', KEYS[3], done) end
return done
"""
#: where the worker processes find `peers` (and balance_api): the benchmarks folder
BENCHMARKS = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def redis_url() -> str:
    return os.environ.get(URL_VARIABLE, "redis://127.0.0.1:6390/0")


_sync: dict[int, tuple[redis.Redis, Any]] = {}
_async: dict[int, tuple[aioredis.Redis, Any]] = {}


def _client() -> tuple[redis.Redis, Any]:
    """This process's client and COUNT script (made after any fork, once)."""
    made = _sync.get(os.getpid())
    if made is None:
        client = redis.Redis.from_url(redis_url())
        made = _sync[os.getpid()] = (client, client.register_script(COUNT))
    return made


def _aclient() -> tuple[aioredis.Redis, Any]:
    """This process's asyncio client and COUNT script (one event loop per process)."""
    made = _async.get(os.getpid())
    if made is None:
        client = aioredis.Redis.from_url(redis_url())
        made = _async[os.getpid()] = (client, client.register_script(COUNT))
    return made


def done() -> None:
    """Count one finished task (a plain task's last step)."""
    _client()[1](keys=[DONE, TARGET, FINISHED])


async def adone() -> None:
    """Count one finished task (an async task's last step)."""
    await _aclient()[1](keys=[DONE, TARGET, FINISHED])


def ready() -> None:
    """Say that this worker process runs tasks (the warm-up task)."""
    _client()[0].sadd(READY, os.getpid())


async def aready() -> None:
    await _aclient()[0].sadd(READY, os.getpid())


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a worker process: this one's, the benchmarks folder on the path."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCHMARKS), env.get("PYTHONPATH")) if p)
    return env


class Producer(Protocol):
    """One producer of a peer: opens its connections, enqueues one warm-up task, enqueues n
    no-op tasks one at a time with the peer's usual call, closes."""

    async def open(self) -> None: ...
    async def hello(self) -> None: ...
    async def send(self, n: int) -> None: ...
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Peer:
    """A peer in one setting: its row label, the setting in words, the worker processes'
    command lines (and extra environment) and a new producer."""

    name: str
    setting: str
    commands: Sequence[Sequence[str]]
    producer: Callable[[], Producer]
    env: tuple[tuple[str, str], ...] = ()


class Processes:
    """Processes started for one run, each the leader of its own process group (so Ctrl-C in
    the terminal does not reach them and stopping one stops its children), with output in
    files under `logs`. `close()` stops every group: SIGTERM, then SIGKILL after `grace`."""

    def __init__(self, logs: Path, grace: float = 3.0) -> None:
        self.logs = logs
        self.grace = grace
        self.started: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=BENCHMARKS,
                start_new_session=True,
            )
        except BaseException:
            log.close()
            raise
        self.started.append((name, process, log))

    def check(self) -> None:
        """Raise RuntimeError, with the end of its output, when a process has exited."""
        for name, process, log in self.started:
            if process.poll() is not None:
                log.flush()
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def close(self) -> None:
        for _, process, _ in self.started:
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for _, process, _ in self.started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for _, process, log in self.started:
            _signal_group(process.pid, signal.SIGKILL)  # the group's children too
            process.wait()
            log.close()
        self.started.clear()


def start_redis(processes: Processes, workdir: Path, budget: float = 10.0) -> str:
    """Start redis-server among `processes` (its own session, so Ctrl-C reaches only the
    benchmark, which stops it last) on a free loopback port, appendonly yes with appendfsync
    everysec, data in `workdir`; its URL once it answers PING."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        shutil.which("redis-server") or "/usr/bin/redis-server",
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--maxmemory-policy", "noeviction", "--daemonize", "no",
    ]  # fmt: skip
    processes.start("redis-server", argv, dict(os.environ))
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + budget
    while True:
        processes.check()
        try:
            if redis.Redis.from_url(url, socket_timeout=0.5).ping():
                return url
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer on port {port}") from None
        time.sleep(0.02)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
