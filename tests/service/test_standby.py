"""`serve` over a Redis store is a leader candidate: a second service on the same swarm stands by,
and when the first is killed (SIGKILL) it takes the swarm over and finishes the tasks the first
had accepted, with HTTP agents that register with it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from redisserver import RedisServer, free_port, redis_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as started:
        yield started


@contextmanager
def service(store: str, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        args = [sys.executable, "-m", "swarmbalancer", "serve", "--port", str(port)]
        proc = subprocess.Popen([*args, "--store", store], stdout=sink, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def until(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.timeout(90)
def test_a_standby_service_takes_the_swarm_over_when_the_leader_is_killed(
    server: RedisServer, tmp_path: Path
) -> None:
    store = f"{server.url}?swarm=s1&lease_ttl=1"
    first, second = free_port(), free_port()
    a_url, b_url = f"http://127.0.0.1:{first}", f"http://127.0.0.1:{second}"
    with service(store, first, tmp_path / "a.log") as leader:
        until(lambda: httpx.get(f"{a_url}/health").status_code == 200, "the leader")
        with service(store, second, tmp_path / "b.log"):
            until(lambda: "standing by" in (tmp_path / "b.log").read_text(), "the standby")
            items = [{"payload": {"n": i}} for i in range(20)]
            reply = httpx.post(f"{a_url}/v1/tasks/batch", json={"items": items})
            assert reply.status_code == 201, reply.text
            ids = [t["id"] for t in reply.json()["tasks"]]
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"{b_url}/health", timeout=0.5)  # standing by: not serving
            leader.kill()
            leader.wait(timeout=10)
            until(lambda: httpx.get(f"{b_url}/health").status_code == 200, "the takeover")
            with httpx.Client(base_url=b_url, timeout=10) as b:
                assert b.post("/v1/agents", json={"id": "a1", "capacity": 4}).status_code == 201
                done = 0
                while done < len(ids):
                    lease = b.get("/v1/agents/a1/next", params={"wait": 5}).json()
                    payload = lease["task"]["payload"]
                    answer = b.post(
                        f"/v1/agents/a1/leases/{lease['lease']}", json={"result": payload["n"] * 2}
                    )
                    assert answer.status_code == 200, answer.text
                    done += 1
                views = [
                    b.get(f"/v1/tasks/{task_id}", params={"wait": 5}).json() for task_id in ids
                ]
    assert [v["state"] for v in views] == ["done"] * len(ids)
    assert sorted(v["result"] for v in views) == [2 * i for i in range(20)]
