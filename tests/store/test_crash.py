"""A real crash: a subprocess runs a durable Balancer, is killed with SIGKILL mid-run, and a new
Balancer on the same file finishes every unfinished task, each outcome recorded exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from swarmbalancer import Balancer, Task

CHILD = Path(__file__).with_name("crash_child.py")
TASKS = 10_000


def events(log: Path) -> dict[str, set[str]]:
    """Task ids by event letter (S submitted, B began, E ended) from the child's log."""
    out: dict[str, set[str]] = {"S": set(), "B": set(), "E": set()}
    for line in log.read_text().splitlines():
        kind, _, task_id = line.partition(" ")
        if kind in out:
            out[kind].add(task_id)
    return out


def run_child_until_killed(store: str, log: Path, wait: float = 15.0) -> None:
    """Start the child on `store` (a file or a store URL); SIGKILL it once a few thousand tasks
    have finished (or after `wait` seconds)."""
    child = subprocess.Popen([sys.executable, str(CHILD), store, str(log), str(TASKS)])
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
            if log.exists() and log.read_text().count("\nE ") >= 2500:
                break
        assert child.poll() is None, "the child finished (or died) before it could be killed"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)


def snapshot(db: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT id, state FROM tasks").fetchall())


@pytest.mark.timeout(90)
def test_a_killed_balancer_loses_nothing_and_records_each_outcome_once(tmp_path: Path) -> None:
    db, log = tmp_path / "swarm.db", tmp_path / "events.log"
    run_child_until_killed(str(db), log)
    before = snapshot(db)
    child = events(log)
    at_crash = Counter(before.values())
    assert child["S"] <= set(before), "a submission acknowledged before the crash was lost"
    assert "DONE" not in log.read_text()

    reran: list[str] = []

    async def handler(task: Task) -> int:
        reran.append(task.id)
        await asyncio.sleep(0)
        return int(task.payload["n"]) * 2

    async def resume() -> None:
        lb = Balancer({"maxRetries": 3}, store=f"sqlite:///{db}")
        assert lb.outstanding == at_crash["waiting"] + at_crash["running"]
        for i in range(4):
            lb.add_agent(f"a{i}", handler, capacity=16)
        async with lb:
            await lb.join()
        lb.close()

    asyncio.run(resume())
    with contextlib.closing(sqlite3.connect(db)) as conn:
        after = conn.execute("SELECT id, state, attempt, result FROM tasks").fetchall()
    states = Counter(state for _, state, _, _ in after)
    assert states == {"done": len(before)}, states  # 0 lost, nothing left waiting or running
    assert len({row[0] for row in after}) == len(after)  # one outcome row per task
    assert all(int(r) == 2 * int(i[1:]) for i, _, _, r in after)
    done_before = {i for i, s in before.items() if s == "done"}
    assert not done_before & set(reran), "a task finished before the crash ran again"
    assert len(reran) == len(set(reran)) == len(before) - len(done_before)
    ran_twice = child["B"] & set(reran)
    assert ran_twice == child["B"] - done_before  # every unfinished start ran again, once
    running = {i for i, s in before.items() if s == "running"}
    attempts = {i: a for i, _, a, _ in after}
    assert all(attempts[i] == 2 for i in running)  # the lost attempt counted
    ended = ran_twice & child["E"]  # it returned in the child, its outcome was not yet flushed
    print(
        f"\ncrash: {len(before)} tasks in the file ({dict(at_crash)}), {len(child['S'])} "
        f"submissions acknowledged; after recovery all {len(after)} done; ran twice: "
        f"{len(ran_twice)} ({len(ran_twice & running)} running at the crash per the file, "
        f"{len(ran_twice - running)} started after the last flush; {len(ended)} of them had "
        "returned but their outcome was not yet flushed)"
    )
