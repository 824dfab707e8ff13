"""Nothing a handler or the user's own code raises leaves a slot busy or a handle unresolved."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from swarmbalancer import Balancer, Task, TaskFailed


class Escape(BaseException):
    """A BaseException that is not an Exception, as some libraries raise."""


def _strict(report: dict[str, Any]) -> None:
    accounted = report["completed"] + report["failed"] + report["cancelled"] + report["open"]
    assert report["lost"] == 0 and accounted == report["accepted"]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("plain", [False, True])
def test_a_handler_raising_a_base_exception_fails_its_task_and_frees_its_slot(plain: bool) -> None:
    def sync_handler(task: Task) -> Any:
        if task.payload == "escape":
            raise Escape("out")
        return task.payload

    async def async_handler(task: Task) -> Any:
        return sync_handler(task)

    async def main() -> dict[str, Any]:
        lb = Balancer({"maxRetries": 3})
        lb.add_agent("a", sync_handler if plain else async_handler, capacity=1)
        async with lb:
            bad = await lb.submit("escape")
            good = [await lb.submit(i) for i in range(5)]
            with pytest.raises(TaskFailed) as caught:
                await bad
            assert isinstance(caught.value.__cause__, Escape)
            assert caught.value.attempts == 1, "a BaseException is not retried"
            assert [await h for h in good] == list(range(5))
        return lb.report()

    report = asyncio.run(main())
    assert report["failed"] == 1 and report["completed"] == 5 and report["retries"] == 0
    _strict(report)


_STOPPING_PROGRAM = """
import asyncio, json, sys, time
from swarmbalancer import Balancer, TaskFailed

kind = {"KeyboardInterrupt": KeyboardInterrupt, "SystemExit": SystemExit}[sys.argv[1]]
plain = sys.argv[2] == "plain"

def sync_handler(task):
    if task.payload == "stop":
        raise kind()
    time.sleep(0.001)
    return task.payload

async def async_handler(task):
    await asyncio.sleep(0.001)
    if task.payload == "stop":
        raise kind()
    return task.payload

handles = []
lb = Balancer()

async def main():
    lb.add_agent("a", sync_handler if plain else async_handler, capacity=2)
    async with lb:
        handles.extend([await lb.submit(i) for i in range(20)])
        handles.append(await lb.submit("stop"))
        handles.extend([await lb.submit(i) for i in range(20)])
        await lb.join()

try:
    asyncio.run(main())
    raised = None
except BaseException as exc:
    raised = type(exc).__name__
print(json.dumps({
    "raised": raised,
    "all_done": all(h.done() for h in handles),
    "stop_failed": isinstance(handles[20].exception(), TaskFailed),
    "report": lb.report(),
}, allow_nan=False))
"""


@pytest.mark.timeout(30)
@pytest.mark.parametrize("plain", ["async", "plain"])
@pytest.mark.parametrize("kind", ["KeyboardInterrupt", "SystemExit"])
def test_keyboard_interrupt_and_system_exit_from_a_handler_stop_the_program_without_hanging(
    plain: str, kind: str
) -> None:
    # in a child process: a KeyboardInterrupt escaping an event loop upsets pytest's own process
    done = subprocess.run(
        [sys.executable, "-c", _STOPPING_PROGRAM, kind, plain],
        capture_output=True,
        text=True,
        timeout=25,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["raised"] == kind
    assert outcome["all_done"], "every handle is resolved"
    assert outcome["stop_failed"]
    _strict(outcome["report"])
    assert "never retrieved" not in done.stderr


@pytest.mark.timeout(10)
def test_an_error_in_the_users_block_cancels_every_waiting_task_and_counts_no_failed_attempt() -> (
    None
):
    started: list[int] = []

    async def slow(task: Task) -> None:
        started.append(task.payload)
        await asyncio.sleep(5)

    lb = Balancer({"maxRetries": 2})
    lb.add_agent("a", slow, capacity=2)
    lb.add_agent("b", slow, capacity=2)
    handles: list[Any] = []

    async def main() -> None:
        async with lb:
            handles.extend([await lb.submit(i) for i in range(50)])
            await asyncio.sleep(0.01)
            raise ValueError("user code failed")

    began = time.perf_counter()
    with pytest.raises(ValueError, match="user code"):
        asyncio.run(main())
    assert time.perf_counter() - began < 4, "leaving the block does not wait for the handlers"
    assert all(h.cancelled() for h in handles)
    report = lb.report()
    assert report["cancelled"] == 50 and report["failed"] == 0 and report["retries"] == 0
    assert all(row["failed"] == 0 for row in report["per_agent"])
    assert len(started) == 4
    _strict(report)


@pytest.mark.timeout(10)
def test_a_plain_handler_past_its_timeout_keeps_its_slot_and_its_late_success_wins() -> None:
    running = 0
    most = 0
    ran: list[int] = []
    lock = threading.Lock()

    def sluggish(task: Task) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.15 if task.payload == 0 else 0.001)
        with lock:
            running -= 1
            ran.append(task.payload)
        return int(task.payload)

    async def main() -> list[int]:
        lb = Balancer({"taskTimeout": 0.05, "maxRetries": 2, "retryBackoff": 0})
        lb.add_agent("a", sluggish, capacity=1)
        async with lb:
            handles = [await lb.submit(i) for i in range(4)]
            results = [await h for h in handles]
        report = lb.report()
        assert report["completed"] == 4 and report["failed"] == 0 and report["late_results"] == 1
        _strict(report)
        return results

    assert asyncio.run(main()) == [0, 1, 2, 3]
    assert most == 1, "a capacity-1 agent never ran two handlers at once"
    assert sorted(ran) == [0, 1, 2, 3], "each task ran exactly once"


@pytest.mark.timeout(10)
def test_the_thread_pool_fits_the_capacity_of_the_plain_agents() -> None:
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def blocks(task: Task) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(5)
        with lock:
            running -= 1

    async def main() -> None:
        lb = Balancer()
        for i in range(8):
            lb.add_agent(f"a{i}", blocks, capacity=4)
        async with lb:
            for _ in range(32):
                await lb.submit(None)
            for _ in range(200):
                if most >= 32:
                    break
                await asyncio.sleep(0.01)
            release.set()

    asyncio.run(main())
    assert most == 32


@pytest.mark.timeout(10)
def test_a_task_whose_only_agents_left_fails_after_the_park_timeout_and_join_returns() -> None:
    release = asyncio.Event()

    async def handler(task: Task) -> Any:
        await release.wait()
        return task.payload

    async def main() -> tuple[dict[str, Any], BaseException | None]:
        lb = Balancer({"parkTimeout": 0.2})
        lb.add_agent("eu-1", handler, region="eu")
        lb.add_agent("us-1", handler, region="us")
        async with lb:
            busy = await lb.submit("busy", affinity="eu")  # holds the only eu slot
            pinned = await lb.submit("pinned", affinity="eu")  # waits behind it
            await asyncio.sleep(0.01)
            lb.remove_agent("eu-1")  # eu-1 drains: nothing may take `pinned` any more
            release.set()
            await lb.join()
        await busy
        error = None
        try:
            await pinned
        except TaskFailed as exc:
            error = exc
        return lb.report(), error

    report, error = asyncio.run(main())
    assert isinstance(error, TaskFailed) and "parkTimeout" in str(error)
    _strict(report)
    assert report["completed"] == 1 and report["failed"] == 1


@pytest.mark.timeout(20)
def test_a_run_whose_tasks_arrive_after_every_agent_left_ends_with_them_failed() -> None:
    from pathlib import Path

    from swarmbalancer.runtime.runner import run_workload
    from swarmbalancer.workload import parse_workload

    workload = parse_workload(
        {
            "seed": 2,
            "agents": [{"id": "a", "count": 2, "leave": 0.1}],
            "tasks": {
                "count": 30,
                "work": {"dist": "constant", "value": 0.001},
                "arrival": {"process": "poisson", "rate": 100},
            },
            "config": {"parkTimeout": 0.3},
        },
        Path("."),
    )
    report = asyncio.run(run_workload(workload, workload.balancer_config()))
    _strict(report)
    assert report["failed"] >= 1 and report["completed"] + report["failed"] == 30


@pytest.mark.timeout(10)
def test_a_refused_periodic_submit_leaves_no_task_open_and_registers_no_key() -> None:
    from swarmbalancer.errors import TaskRejected

    async def handler(task: Task) -> Any:
        return task.payload

    async def main() -> tuple[Any, dict[str, Any]]:
        lb = Balancer({"discipline": "fifo"})
        lb.add_agent("a", handler)
        async with lb:
            with pytest.raises(TaskRejected, match="period"):
                await lb.submit("first", period=1.0, estimate=0.1, idempotency_key="k")
            second = await lb.submit("second", idempotency_key="k")
            await lb.join()
        return await second, lb.report()

    result, report = asyncio.run(main())
    assert result == "second"
    _strict(report)
    assert report["accepted"] == 1
