"""`serve --demo`: the service hosting the demo swarm on a real uvicorn (a free loopback port,
stopped in teardown): tasks complete, the diagnosis names slow-3 while it fails (2 s to 6 s of
each round), /metrics moves, and the workload starts another round after the first."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from clihelpers import invoke
from servicehelpers import Served
from swarmbalancer.config import load_config
from swarmbalancer.runtime.feeder import WorkloadFeeder
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.service import create_app
from swarmbalancer.service.demo import demo_settings
from swarmbalancer.workload.demo import DEMO, demo_workload
from swarmbalancer.workload.schema import parse_workload

pytestmark = pytest.mark.timeout(60)

FAILING = next(f for f in DEMO["faults"] if f.get("error_rate") == 1.0)
SLOWED = next(f for f in DEMO["faults"] if f.get("slowdown"))


def completed(metrics: str) -> float:
    match = re.search(r"^swarmbalancer_tasks_completed_total (\S+)$", metrics, re.M)
    assert match, metrics[:500]
    return float(match.group(1))


def feeder_of(served: Served) -> WorkloadFeeder:
    hosted: WorkloadFeeder = served.app.state.feeder
    return hosted


@pytest.fixture(scope="module")
def demo() -> Iterator[Served]:
    spec = demo_workload()
    config = load_config({"seed": spec.seed, **(spec.config or {})})
    with Served(create_app(demo_settings(spec, config))) as served:
        yield served


def test_the_demo_swarm_completes_tasks_within_seconds(demo: Served) -> None:
    deadline = time.monotonic() + 10
    report: dict[str, Any] = {}
    while time.monotonic() < deadline:
        report = httpx.get(f"{demo.url}/v1/report").json()
        if report["completed"] >= 50:
            break
        time.sleep(0.2)
    assert report["completed"] >= 50
    assert len(report["per_agent"]) == 12


@pytest.mark.parametrize(
    ("fault", "kind"), [(FAILING, "failing-agent"), (SLOWED, "slow-agent")], ids=["failing", "slow"]
)
def test_the_diagnosis_names_each_injected_fault_while_it_is_active(
    demo: Served, fault: dict[str, Any], kind: str
) -> None:
    """The failing agent and the slowed one, each named while its fault is active. Each answer
    is placed in workload time by the feeder's origin (the test's loop is asyncio's, whose clock
    is time.monotonic); only answers inside the window count."""
    seen_in_window: list[bool] = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not any(seen_in_window):
        round_before, origin = feeder_of(demo).rounds, feeder_of(demo).origin
        assert origin is not None
        before = time.monotonic() - origin
        findings = httpx.get(f"{demo.url}/v1/diagnosis", params={"component": "agents"}).json()
        after = time.monotonic() - origin
        if (
            feeder_of(demo).rounds == round_before
            and fault["from"] <= before <= after <= fault["until"]
        ):
            named = {(f["kind"], f["subject"]) for f in findings["findings"]}
            seen_in_window.append((kind, fault["agent"]) in named)
        time.sleep(0.2)
    assert any(seen_in_window), seen_in_window


def test_metrics_move_and_the_workload_repeats(demo: Served) -> None:
    first = completed(httpx.get(f"{demo.url}/metrics").text)
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and feeder_of(demo).rounds < 1:
        time.sleep(0.2)
    assert feeder_of(demo).rounds >= 1, "the demo did not start a second round"
    time.sleep(1.0)
    metrics = httpx.get(f"{demo.url}/metrics").text
    assert completed(metrics) > first
    assert 'swarmbalancer_task_sojourn_seconds_count{outcome="completed"' in metrics
    status = httpx.get(f"{demo.url}/v1/tasks/r1-t000000").json()
    assert status["id"] == "r1-t000000"


def test_a_workload_feeder_plays_a_small_workload_round_after_round() -> None:
    small = parse_workload(
        {
            "name": "small",
            "seed": 1,
            "agents": [{"id": "w", "count": 2, "capacity": 1, "speed": 1.0}],
            "tasks": {"count": 3, "work": {"dist": "constant", "value": 0.001}},
        },
        Path.cwd(),
    )

    async def main() -> list[str]:
        from swarmbalancer.runtime.feeder import workload_balancer

        lb = workload_balancer(small, load_config({}))
        seen: list[str] = []
        second_round = asyncio.Event()

        def submitted(handle: TaskHandle) -> None:
            seen.append(handle.id)
            if len(seen) == 6:
                second_round.set()

        async with lb:
            feeder = WorkloadFeeder(small, lb, on_submit=submitted)
            playing = asyncio.create_task(feeder.repeat())
            await asyncio.wait_for(second_round.wait(), 20)
            playing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await playing
        return seen

    seen = asyncio.run(main())
    assert seen == [f"r{r}-t00000{i}" for r in (0, 1) for i in range(3)]


def test_serve_demo_is_in_the_help() -> None:
    result = invoke("serve", "--help")
    assert result.exit_code == 0
    assert "--demo" in result.output and "loop" in result.output
