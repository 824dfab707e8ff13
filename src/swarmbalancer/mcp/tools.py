"""The MCP tools over one live swarm: typed arguments (their JSON schemas), role checks, and
every failure as a one-line tool error (`isError`), never a crash of the server."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import Field, ValidationError

from swarmbalancer import __version__
from swarmbalancer.errors import SwarmBalancerError
from swarmbalancer.mcp.access import require
from swarmbalancer.mcp.swarm import MAX_WAIT, LiveSwarm
from swarmbalancer.metrics.diagnosis import Component, diagnose
from swarmbalancer.metrics.snapshot import take_snapshot
from swarmbalancer.service.auth import Role
from swarmbalancer.service.schemas import Priority

INSTRUCTIONS = (
    "Tools over a live swarmbalancer swarm: read its agents, metrics, report, bottlenecks and "
    "token usage, plan or apply rebalancing, submit tasks and read their status, and read, "
    "validate or update its configuration. A value is null where the swarm has no data yet."
)

#: The report's headline figures, shown by `performance_report` in its summary form.
SUMMARY_KEYS = (
    "accepted", "completed", "failed", "cancelled", "open", "retries", "steals", "migrations",
    "makespan_s", "throughput_per_s", "utilization", "jain_fairness", "queue_latency_ms",
    "sojourn_ms", "deadline_misses",
)  # fmt: skip

AgentId = Annotated[str, Field(min_length=1, max_length=200, description="an agent's id")]
TaskId = Annotated[str, Field(min_length=1, max_length=200, description="a task's id")]
Short = Annotated[str, Field(min_length=1, max_length=200)]


def one_line(tool: str, exc: BaseException) -> str:
    """A tool error's message on one line, naming the offending argument when it can."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        first = cause.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "arguments"
        more = len(cause.errors()) - 1
        tail = f" (and {more} more)" if more else ""
        text = f"{tool}: {where}: {first['msg']}{tail}"
    elif isinstance(cause, SwarmBalancerError):
        text = f"{tool}: {cause}"
    else:
        text = str(exc).removeprefix(f"Error executing tool {tool}: ")
        text = text if text.startswith(f"{tool}:") else f"{tool}: {text}"
    return " ".join(text.split())


class SwarmServer(MCPServer[Any]):
    """MCPServer whose tool errors are one line: argument and library errors name the field;
    any other exception stays the SDK's generic crash result."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:
            if isinstance(exc.__cause__, SwarmBalancerError):
                raise ToolError(one_line(name, exc)) from None
            raise
        except ToolError as exc:
            raise ToolError(one_line(name, exc)) from None


def build_server(swarm: LiveSwarm) -> SwarmServer:
    """The MCP server with every tool bound to `swarm`."""
    server = SwarmServer(
        "swarmbalancer", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING"
    )

    @server.tool()
    def agent_list(ctx: Context[Any, Any]) -> dict[str, Any]:
        """Every registered agent: capacity, tasks in flight and queued, learned speed and
        error rate (null before its first finished attempt), breaker state."""
        require(ctx, "list agents", Role.READ, Role.SUBMIT)
        return {"agents": swarm.agents()}

    @server.tool()
    def agent_metrics(
        ctx: Context[Any, Any],
        agent_id: Annotated[
            str | None, Field(max_length=200, description="one agent; omit for every agent")
        ] = None,
    ) -> dict[str, Any]:
        """Live per-agent metrics joined with the report's totals (busy seconds, utilization
        over the run)."""
        require(ctx, "read agent metrics", Role.READ, Role.SUBMIT)
        return swarm.agent_metrics(agent_id)

    @server.tool()
    def load_balance(
        ctx: Context[Any, Any],
        apply: Annotated[
            bool, Field(description="carry the migrations out (admin); false only plans them")
        ] = False,
    ) -> dict[str, Any]:
        """Run the rebalancer now: the migrations (task, from agent, to agent) it plans for
        the tasks queued at agents, applied only with `apply`."""
        if apply:
            require(ctx, "apply migrations", Role.ADMIN)
        else:
            require(ctx, "plan migrations", Role.READ, Role.SUBMIT)
        return swarm.rebalance(apply)

    @server.tool()
    def performance_report(
        ctx: Context[Any, Any],
        detail: Annotated[
            Literal["summary", "detailed"],
            Field(description="summary: headline figures; detailed: the whole report"),
        ] = "summary",
    ) -> dict[str, Any]:
        """The balancer's report (docs/metrics.md): counts, throughput, latency percentiles,
        utilization, fairness, steals and migrations, per agent, priority and tenant."""
        require(ctx, "read the report", Role.READ, Role.SUBMIT)
        report = swarm.report()
        if detail == "detailed":
            return report
        return {key: report[key] for key in SUMMARY_KEYS if key in report}

    @server.tool()
    def bottleneck_analyze(
        ctx: Context[Any, Any],
        component: Annotated[
            Component, Field(description="which part of the swarm to diagnose")
        ] = "all",
        top: Annotated[int, Field(ge=1, le=100, description="at most this many findings")] = 10,
    ) -> dict[str, Any]:
        """Ranked findings from the live swarm (the diagnosis `bottleneck-analyze` and
        /v1/diagnosis give): failing, slow and saturated agents, queue growth, aging pressure,
        uneven load, coordinator decision time, store latency; each with its evidence and a
        setting to try."""
        require(ctx, "analyze bottlenecks", Role.READ, Role.SUBMIT)
        balancer = swarm.balancer
        snapshot = take_snapshot(balancer.coordinator, balancer.now(), balancer.decision_timing)
        findings = diagnose(snapshot, component)
        return {
            "component": component,
            "findings": [f.to_dict() for f in findings[:top]],
            "total_findings": len(findings),
        }

    @server.tool()
    def token_usage(ctx: Context[Any, Any]) -> dict[str, Any]:
        """Tokens and cost reported by handlers, as the report aggregates them; null when no
        handler has reported any (the swarm does not estimate usage)."""
        require(ctx, "read token usage", Role.READ, Role.SUBMIT)
        usage = swarm.report().get("token_usage")
        return {"available": usage is not None, "token_usage": usage}

    @server.tool()
    async def task_submit(
        ctx: Context[Any, Any],
        payload: Annotated[
            Any,
            Field(
                description="the task's JSON payload (the demo swarm's agents read "
                '{"work": seconds at speed 1})'
            ),
        ] = None,
        priority: Priority | None = None,
        tenant: Annotated[str | None, Field(max_length=200)] = None,
        within: Annotated[
            float | None, Field(gt=0, description="deadline, seconds from now")
        ] = None,
        estimate: Annotated[float | None, Field(ge=0, description="expected work")] = None,
        affinity: Annotated[
            list[Short] | None, Field(max_length=1000, description="agent ids or tags allowed")
        ] = None,
        region: Annotated[str | None, Field(max_length=200)] = None,
        idempotency_key: Annotated[str | None, Field(min_length=1, max_length=200)] = None,
        max_retries: Annotated[int | None, Field(ge=0, le=1000)] = None,
    ) -> dict[str, Any]:
        """Submit one task; returns its id and state (read it later with task_status). A
        repeated idempotency_key returns the first task."""
        require(ctx, "submit tasks", Role.SUBMIT)
        keywords = {
            "priority": priority, "tenant": tenant, "within": within, "estimate": estimate,
            "affinity": affinity, "region": region, "idempotency_key": idempotency_key,
            "max_retries": max_retries,
        }  # fmt: skip
        return await swarm.submit(payload, **{k: v for k, v in keywords.items() if v is not None})

    @server.tool()
    async def task_status(
        ctx: Context[Any, Any],
        task_id: TaskId,
        wait: Annotated[
            float, Field(ge=0, le=MAX_WAIT, description="seconds to wait for the task to end")
        ] = 0,
    ) -> dict[str, Any]:
        """A task's state, attempts, agent, and once it ended its result or error."""
        require(ctx, "read tasks", Role.READ, Role.SUBMIT)
        return await swarm.task(task_id, wait)

    @server.tool()
    def config_manage(
        ctx: Context[Any, Any],
        action: Annotated[
            Literal["get", "validate", "update"],
            Field(description="get the running config; validate or update (admin) `config`"),
        ] = "get",
        config: Annotated[
            dict[str, Any] | None, Field(description="keys to check or change, either spelling")
        ] = None,
    ) -> dict[str, Any]:
        """The running configuration: read it, validate changes as load_config does, or
        change it live (taskTimeout, maxRetries, retryBackoff, retryBackoffMax)."""
        if action == "get":
            require(ctx, "read the configuration", Role.READ, Role.SUBMIT)
            return {"config": swarm.config()}
        if config is None:
            raise ToolError(f"config: `{action}` needs the keys, as a JSON object")
        if action == "validate":
            require(ctx, "validate configuration", Role.READ, Role.SUBMIT)
            return swarm.validate_config(config)
        require(ctx, "update the configuration", Role.ADMIN)
        return {"config": swarm.update_config(config)}

    return server


__all__ = ["SwarmServer", "build_server", "one_line"]
