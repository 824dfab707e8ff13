"""The seed's commands against a real service (uvicorn on a free loopback port, in a thread)
with a healthy, a failing and a slowed local agent: tables and --json, one-line errors."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from clihelpers import invoke, one_line_error
from swarmbalancer import report_usage
from swarmbalancer.model import Task
from swarmbalancer.service import ServeSettings, create_app


async def quick(task: Task) -> int:
    report_usage(input_tokens=10, output_tokens=2, model="m1", cost=0.01)
    await asyncio.sleep(0.005)
    return 1


async def slow(task: Task) -> int:
    await asyncio.sleep(0.05)
    return 1


async def broken(task: Task) -> int:
    raise RuntimeError("injected")


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    """A service with agents ok-1, ok-2 (tagged gpu), bad and slow, after 80 tasks."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = {"strategy": "round_robin", "failureThreshold": 3, "timeout": 60}
    app = create_app(ServeSettings(port=port, config=config))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve([sock]),))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

        async def load() -> None:
            lb = app.state.service.balancer
            for name, handler in (("ok-1", quick), ("ok-2", quick), ("bad", broken)):
                lb.add_agent(name, handler, speed_hint=1.0, tags=["gpu"])
            lb.add_agent("slow", slow, speed_hint=1.0)
            handles = [
                await lb.submit(n, estimate=0.005, tenant="t1", max_retries=5) for n in range(80)
            ]
            await asyncio.wait(handles, timeout=20)

        asyncio.run_coroutine_threadsafe(load(), loop).result(30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        loop.close()
        sock.close()


def run_json(*args: str) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.timeout(30)
def test_agent_metrics_show_every_agent_with_its_figures(live: str) -> None:
    rows = {r["id"]: r for r in run_json("agent-metrics", "--url", live)["agents"]}
    assert set(rows) == {"ok-1", "ok-2", "bad", "slow"}
    assert rows["bad"]["breaker"] in ("open", "half_open")
    assert rows["ok-1"]["token_usage"]["input_tokens"] == 10 * rows["ok-1"]["completed"]
    assert rows["slow"]["token_usage"] is None
    gpu = run_json("agent-metrics", "--url", live, "--type", "gpu")["agents"]
    assert {r["id"] for r in gpu} == {"ok-1", "ok-2", "bad"}
    one = run_json("agent-metrics", "--url", live, "--agent", "slow")["agents"]
    assert [r["id"] for r in one] == ["slow"]
    table = invoke("agent-metrics", "--url", live)
    assert table.exit_code == 0 and "ok-1" in table.stdout and "bad" in table.stdout


@pytest.mark.timeout(30)
def test_bottleneck_analyze_names_the_failing_and_the_slow_agent(live: str) -> None:
    findings = run_json("bottleneck-analyze", "--url", live, "--component", "agents")["findings"]
    named = {(f["kind"], f["subject"]) for f in findings}
    assert ("failing-agent", "bad") in named
    assert ("slow-agent", "slow") in named
    table = invoke("bottleneck-analyze", "--url", live, "--component", "agents")
    assert table.exit_code == 0 and "bad" in table.stdout and "suggestion" in table.stdout
    line = one_line_error(invoke("bottleneck-analyze", "--url", live, "--component", "disk"))
    assert "component" in line and "422" in line


@pytest.mark.timeout(30)
def test_performance_report_in_every_format(live: str) -> None:
    report = run_json("performance-report", "--url", live)
    assert report["accepted"] == 80
    assert report["token_usage"]["per_model"]["m1"]["input_tokens"] > 0
    same = json.loads(invoke("performance-report", "--url", live, "--format", "json").stdout)
    assert same["accepted"] == 80
    for fmt in ("summary", "detailed"):
        result = invoke("performance-report", "--url", live, "--format", fmt)
        assert result.exit_code == 0
        assert ("token usage" in result.stdout) == (fmt == "detailed")
    one_line_error(invoke("performance-report", "--url", live, "--format", "xml"))


@pytest.mark.timeout(30)
def test_metrics_collect_takes_quoted_and_shell_split_lists(live: str) -> None:
    quoted = run_json(
        "metrics-collect", "--url", live, "--components", '["load-balancer","task-queue"]'
    )
    assert set(quoted) == {"load-balancer", "task-queue"}
    assert quoted["load-balancer"]["accepted"] == 80
    # the seed's unquoted ["load-balancer", "task-queue"], as the shell passes it
    split = run_json(
        "metrics-collect", "--url", live, "--components", "[load-balancer,", "task-queue]"
    )
    assert set(split) == {"load-balancer", "task-queue"}
    every = run_json(
        "metrics-collect",
        "--url",
        live,
        "--components",
        '["agents", "token-usage", "swarm-coordination"]',
    )
    assert every["token-usage"]["token_usage"]["reports"] > 0
    assert invoke("metrics-collect", "--url", live, "--components", '["agents"]').exit_code == 0
    line = one_line_error(invoke("metrics-collect", "--url", live, "--components", "[disk]"))
    assert "--components" in line and "disk" in line


@pytest.mark.timeout(30)
def test_load_balance_plans_and_applies_and_switches_the_strategy_live(live: str) -> None:
    plan = run_json("load-balance", "--url", live, "--swarm-id", "s1", "--dry-run")
    assert plan["applied"] is False and plan["strategy"] == "round_robin"
    assert isinstance(plan["migrations"], list)
    done = run_json("load-balance", "--url", live, "--swarm-id", "s1", "--strategy", "round_robin")
    assert done["applied"] is True
    table = invoke("load-balance", "--url", live, "--swarm-id", "s1", "--dry-run")
    assert table.exit_code == 0 and "would move" in table.stdout
    planned = run_json(
        "load-balance", "--url", live, "--swarm-id", "s1", "--strategy", "adaptive", "--dry-run"
    )
    assert planned["strategy"] == "adaptive" and planned["applied"] is False
    assert json.loads(invoke("config-manage", "--url", live).stdout)["strategy"] == "round_robin"
    switched = run_json("load-balance", "--url", live, "--swarm-id", "s1", "--strategy", "adaptive")
    assert switched["strategy"] == "adaptive" and switched["applied"] is True
    assert json.loads(invoke("config-manage", "--url", live).stdout)["strategy"] == "adaptive"
    back = run_json("load-balance", "--url", live, "--swarm-id", "s1", "--strategy", "round_robin")
    assert back["strategy"] == "round_robin"
    line = one_line_error(
        invoke("load-balance", "--url", live, "--swarm-id", "s1", "--strategy", "fastest")
    )
    assert line.startswith("error: strategy")


@pytest.mark.timeout(30)
def test_config_manage_works_on_the_live_service(live: str) -> None:
    got = json.loads(invoke("config-manage", "--url", live).stdout)
    assert got["strategy"] == "round_robin"
    updated = invoke(
        "config-manage", "--url", live, "--action", "update", "--config", '{"maxRetries": 7}'
    )
    assert json.loads(updated.stdout)["maxRetries"] == 7
    unset = invoke("config-manage", "--url", live, "--action", "unset", "--key", "maxRetries")
    assert json.loads(unset.stdout)["maxRetries"] == 2
    valid = invoke(
        "config-manage", "--url", live, "--action", "validate", "--config", '{"maxRetries": 3}'
    )
    assert valid.exit_code == 0
    bad = one_line_error(
        invoke("config-manage", "--url", live, "--action", "update", "--config", '{"seed": 5}')
    )
    assert "seed" in bad


def test_an_unreachable_service_is_one_line() -> None:
    line = one_line_error(invoke("agent-metrics", "--url", "http://127.0.0.1:9"))
    assert "no answer" in line


def test_agent_spawn_worker_needs_a_redis_store_and_a_handler_naming_them() -> None:
    line = one_line_error(invoke("agent", "spawn", "load-balancer", "--type", "worker"))
    assert line.startswith("error: --store:") and "redis://" in line
    redis = ["--store", "redis://127.0.0.1:1/0"]
    line = one_line_error(invoke("agent", "spawn", "load-balancer", "--type", "worker", *redis))
    assert line.startswith("error: --handler:")
    other = one_line_error(invoke("agent", "spawn", "load-balancer", "--type", "robot"))
    assert "--type" in other
