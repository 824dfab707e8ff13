"""Worker processes for the edge's tests: started with `python -m swarmbalancer worker`,
killed in a finally block whatever happened; and plain-redis stand-ins for the leader's leasing
(the wire formats agreed with the coordinator side)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis

from swarmbalancer.cluster.keys import SwarmKeys

HANDLERS = Path(__file__).parent / "worker"  # edge_handlers.py, importable from there


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path
    agent: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def worker_process(
    url: str,
    agent: str,
    logs: Path,
    *,
    handler: str = "edge_handlers:plain_handler",
    capacity: int = 4,
    swarm: str = "t1",
    extra: tuple[str, ...] = (),
) -> Iterator[WorkerProcess]:
    """A running worker process, killed on exit if it is still alive."""
    command = [
        sys.executable, "-m", "swarmbalancer", "worker",
        "--store", url, "--swarm-id", swarm, "--handler", handler,
        "--capacity", str(capacity), "--id", agent, "--heartbeat", "0.2", *extra,
    ]  # fmt: skip
    log = logs / f"{agent}-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=HANDLERS, stdout=sink, stderr=subprocess.STDOUT)
        try:
            yield WorkerProcess(process, log, agent)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def eventually(check: Callable[[], bool], timeout: float = 20.0, what: str = "it") -> None:
    """Wait for `check()` to hold (a subprocess's doing), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def lease(
    r: Redis,
    keys: SwarmKeys,
    agent: str,
    payloads: list[Any],
    *,
    timeout: float | None = None,
    epoch: int = 1,
) -> list[str]:
    """Lease one task per payload to `agent` as the leader would; returns the lease ids (the
    task of lease `L` is `task-L`)."""
    ids = [uuid.uuid4().hex for _ in payloads]
    entries = [
        json.dumps({"lease": i, "task": f"task-{i}", "attempt": 1, "payload": p,
                    "deadline": None, "timeout": timeout})
        for i, p in zip(ids, payloads, strict=True)
    ]  # fmt: skip
    pipe = r.pipeline(transaction=False)
    pipe.hset(keys.leases, mapping={i: f"{agent} task-{i} {epoch}" for i in ids})
    pipe.rpush(keys.ready(agent), *entries)
    pipe.execute()
    return ids


def outcomes(r: Redis, keys: SwarmKeys, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Pop `count` outcomes (blocking), failing after `timeout` seconds."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{len(got)} of {count} outcome(s) within {timeout}s")
        popped = r.blmpop(min(left, 1.0), 1, keys.outcomes, direction="LEFT", count=count)
        if popped:
            got.extend(json.loads(x) for x in popped[1])
    return got
