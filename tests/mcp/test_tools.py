"""The tools in-process, with the SDK's own client: schemas, each tool's answer read from the
live swarm, role-free stdio semantics, and bad arguments as one-line tool errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mcp import Client

from mcphelpers import TOOLS, error_line, held_swarm, payload
from swarmbalancer.mcp import LiveSwarm, build_server

pytestmark = pytest.mark.timeout(20)


def run(test: Any) -> None:
    asyncio.run(test())


def test_every_tool_is_listed_with_a_typed_schema() -> None:
    async def main() -> None:
        async with held_swarm() as (balancer, _), Client(build_server(LiveSwarm(balancer))) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert set(tools) == TOOLS
            submit = tools["task_submit"].input_schema["properties"]
            assert set(submit["priority"]["anyOf"][0]["enum"]) >= {"critical", "low"}
            assert submit["within"]["anyOf"][0]["exclusiveMinimum"] == 0
            status = tools["task_status"].input_schema
            assert status["required"] == ["task_id"]
            assert status["properties"]["wait"]["maximum"] == 30
            manage = tools["config_manage"].input_schema["properties"]["action"]
            assert manage["enum"] == ["get", "validate", "update"]
            assert all(t.description for t in tools.values())

    run(main)


def test_submit_then_status_follows_the_task_to_its_result() -> None:
    async def main() -> None:
        async with (
            held_swarm() as (balancer, held),
            Client(build_server(LiveSwarm(balancer))) as c,
        ):
            task = payload(await c.call_tool("task_submit", {"payload": {"n": 7}, "tenant": "t"}))
            assert task["tenant"] == "t"
            waiting = payload(await c.call_tool("task_status", {"task_id": task["id"]}))
            assert waiting["state"] in ("queued", "running") and waiting["result"] is None
            held.release.set()
            done = payload(await c.call_tool("task_status", {"task_id": task["id"], "wait": 5}))
            assert (done["state"], done["result"], done["agent"]) == ("done", {"n": 7}, "a1")
            report = payload(await c.call_tool("performance_report", {}))
            assert (report["accepted"], report["completed"]) == (1, 1)
            detailed = payload(await c.call_tool("performance_report", {"detail": "detailed"}))
            assert [row["id"] for row in detailed["per_agent"]] == ["a1"]

    run(main)


def test_agent_tools_read_the_live_state_and_null_before_any_data() -> None:
    async def main() -> None:
        async with held_swarm() as (balancer, _), Client(build_server(LiveSwarm(balancer))) as c:
            for n in range(3):
                await c.call_tool("task_submit", {"payload": n})
            await asyncio.sleep(0.05)
            (agent,) = payload(await c.call_tool("agent_list", {}))["agents"]
            assert (agent["id"], agent["in_flight"], agent["queued"]) == ("a1", 1, 2)
            assert agent["learned_speed"] is None and agent["error_rate"] is None
            assert agent["breaker_state"] == "closed"
            (one,) = payload(await c.call_tool("agent_metrics", {"agent_id": "a1"}))["agents"]
            assert one["busy_s"] is not None and one["utilization_now"] == 1.0
            usage = payload(await c.call_tool("token_usage", {}))
            assert usage == {"available": False, "token_usage": None}
            findings = payload(await c.call_tool("bottleneck_analyze", {}))["findings"]
            (full,) = [f for f in findings if f["kind"] == "saturated-agents"]
            assert full["evidence"]["saturated"] == ["a1"] and full["evidence"]["waiting"] == 2

    run(main)


def test_load_balance_plans_without_moving_and_applies_when_asked() -> None:
    async def main() -> None:
        async with held_swarm() as (balancer, held), Client(build_server(LiveSwarm(balancer))) as c:
            for n in range(6):
                await c.call_tool("task_submit", {"payload": n, "estimate": 1.0})
            balancer.add_agent("a2", held, capacity=1)
            await asyncio.sleep(0.05)
            plan = payload(await c.call_tool("load_balance", {}))
            assert plan["enabled"] and not plan["applied"]
            assert plan["migrations"], plan
            assert {(m["source"], m["target"]) for m in plan["migrations"]} == {("a1", "a2")}
            assert (
                payload(await c.call_tool("load_balance", {}))["migrations"] == (plan["migrations"])
            )  # the dry run left the rebalancer's cooldowns as they were
            assert balancer.report()["migrations"] == 0
            applied = payload(await c.call_tool("load_balance", {"apply": True}))
            assert applied["migrations"] == plan["migrations"]
            assert balancer.report()["migrations"] == len(plan["migrations"])

    run(main)


def test_config_manage_gets_validates_and_updates_live_keys_only() -> None:
    async def main() -> None:
        async with held_swarm() as (balancer, _), Client(build_server(LiveSwarm(balancer))) as c:
            got = payload(await c.call_tool("config_manage", {}))["config"]
            assert got["strategy"] == "round_robin"
            checked = payload(
                await c.call_tool(
                    "config_manage",
                    {"action": "validate", "config": {"task_timeout": 9, "discipline": "cfs"}},
                )
            )
            assert checked["live"] == ["taskTimeout"] and checked["restart_only"] == ["discipline"]
            assert balancer.config.task_timeout != 9  # validate applies nothing
            updated = payload(
                await c.call_tool(
                    "config_manage", {"action": "update", "config": {"maxRetries": 7}}
                )
            )
            assert updated["config"]["maxRetries"] == balancer.config.max_retries == 7

    run(main)


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("agent_metrics", {"agent_id": 5}, "agent_metrics: agent_id: Input should be a valid"),
        ("agent_metrics", {"agent_id": "ghost"}, "agent_metrics: agent_id: 'ghost' is not"),
        ("task_status", {"task_id": "nope"}, "task_status: task_id: no task 'nope' is known"),
        ("task_status", {}, "task_status: task_id: Field required"),
        ("task_status", {"task_id": "x", "wait": 31}, "task_status: wait: Input should be less"),
        ("task_submit", {"priority": "urgent"}, "task_submit: priority:"),
        ("task_submit", {"within": 0}, "task_submit: within: Input should be greater than 0"),
        ("task_submit", {"affinity": ["nobody"]}, "task_submit: affinity: "),
        ("bottleneck_analyze", {"top": 0}, "bottleneck_analyze: top: Input should be greater"),
        ("performance_report", {"detail": "all"}, "performance_report: detail: Input should be"),
        ("config_manage", {"action": "update"}, "config_manage: config: `update` needs the keys"),
        (
            "config_manage",
            {"action": "validate", "config": {"taskTimeout": -1}},
            "config_manage: taskTimeout:",
        ),
        (
            "config_manage",
            {"action": "update", "config": {"discipline": "cfs"}},
            "config_manage: discipline: ",
        ),
        ("config_manage", {"action": "validate", "config": {"nope": 1}}, "config_manage: nope"),
        ("no_such_tool", {}, "no_such_tool: Unknown tool: no_such_tool"),
    ],
)
def test_bad_arguments_give_a_one_line_tool_error_and_the_server_goes_on(
    tool: str, arguments: dict[str, Any], message: str
) -> None:
    async def main() -> None:
        async with held_swarm() as (balancer, _), Client(build_server(LiveSwarm(balancer))) as c:
            line = error_line(await c.call_tool(tool, arguments))
            assert line.startswith(message), line
            assert payload(await c.call_tool("agent_list", {}))["agents"][0]["id"] == "a1"

    run(main)
