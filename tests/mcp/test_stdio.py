"""`swarmbalancer mcp` as a client launches it: a subprocess over stdio hosting the demo swarm
(or a workload file), driven by the SDK's own stdio client."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from mcphelpers import TOOLS, error_line, payload

pytestmark = pytest.mark.timeout(30)

SMALL = {
    "name": "small",
    "seed": 3,
    "agents": [{"id": "w", "count": 2, "capacity": 1, "speed": 1.0}],
    "tasks": {"count": 4, "work": {"dist": "constant", "value": 0.01}},
}


def server(*args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "swarmbalancer", "mcp", *args])


def test_the_demo_swarm_answers_every_read_tool_over_stdio() -> None:
    async def main() -> None:
        async with Client(server()) as c:
            assert {t.name for t in (await c.list_tools()).tools} == TOOLS
            agents = payload(await c.call_tool("agent_list", {}))["agents"]
            assert len(agents) == 12 and {"slow-3", "mid-1", "fast-0"} <= {a["id"] for a in agents}
            for tool in ("agent_metrics", "load_balance", "performance_report",
                         "bottleneck_analyze", "token_usage", "config_manage"):  # fmt: skip
                assert isinstance(payload(await c.call_tool(tool, {})), dict)
            assert "Input should be" in error_line(await c.call_tool("load_balance", {"apply": 2}))
            report = payload(await c.call_tool("performance_report", {}))
            assert report["accepted"] > 0  # the demo's tasks are arriving

    asyncio.run(main())


def test_a_workload_file_is_hosted_and_takes_submitted_tasks(tmp_path: Path) -> None:
    workload = tmp_path / "small.json"
    workload.write_text(json.dumps(SMALL))

    async def main() -> None:
        async with Client(server("--file", str(workload))) as c:
            agents = payload(await c.call_tool("agent_list", {}))["agents"]
            assert sorted(a["id"] for a in agents) == ["w-0", "w-1"]
            task = payload(await c.call_tool("task_submit", {"payload": {"work": 0.01}}))
            done = payload(await c.call_tool("task_status", {"task_id": task["id"], "wait": 10}))
            assert done["state"] == "done" and done["agent"] in ("w-0", "w-1")
            bad = payload(await c.call_tool("task_submit", {"payload": "no work"}))
            failed = payload(await c.call_tool("task_status", {"task_id": bad["id"], "wait": 10}))
            assert (
                failed["state"] == "failed" and "synthetic agent needs payload" in failed["error"]
            )

    asyncio.run(main())
