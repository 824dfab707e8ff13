"""The one door the MCP tools use into a live swarm: a running `Balancer` and its tasks by id.

The same adapter serves `swarmbalancer serve` (over the service's balancer and task book, so a
task submitted by a tool is visible over HTTP and the other way round) and `swarmbalancer mcp`
(over an embedded balancer). Every figure is read from the balancer when asked; where there is
no data yet the value is None, never a default dressed as a measurement.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from swarmbalancer.errors import AgentError, TaskRejected
from swarmbalancer.model import AgentState
from swarmbalancer.policies.breaker import BreakerState, CircuitBreakerPolicy
from swarmbalancer.runtime.balancer import LIVE_KEYS, Balancer
from swarmbalancer.service.book import TaskBook, record_view, task_view

#: The longest a `task_status` call waits for a task to end.
MAX_WAIT = 30.0


def agent_row(state: AgentState, breaker: str | None) -> dict[str, Any]:
    """One agent's live figures; learned speed and error rate are None until it has finished
    an attempt (only a hint, if any, is known before)."""
    stats = state.stats
    observed = stats.samples > 0
    return {
        "id": state.id,
        "capacity": state.spec.capacity,
        "in_flight": state.in_flight,
        "queued": state.queued,
        "utilization_now": state.in_flight / state.spec.capacity,
        "completed": state.completed,
        "failed": state.failed,
        "learned_speed": stats.speed if observed else None,
        "speed_hint": state.spec.speed_hint,
        "error_rate": stats.error_rate if observed else None,
        "breaker_state": breaker,
        "draining": state.draining,
        "region": state.spec.region,
    }


@dataclass
class LiveSwarm:
    """A running balancer and the handles of the tasks submitted through it, by id."""

    balancer: Balancer
    book: TaskBook = field(default_factory=lambda: TaskBook(100_000, lambda handle: None))

    # -- agents -------------------------------------------------------------------------------
    def agents(self) -> list[dict[str, Any]]:
        coord, now = self.balancer.coordinator, self.balancer.now()
        return [
            agent_row(state, _breaker(coord.breakers, state.id, now))
            for state in coord.store.agents()
        ]

    def agent_metrics(self, agent_id: str | None) -> dict[str, Any]:
        """Live state joined with the report's per-agent totals (busy time, utilization over
        the run); one agent, or every agent when `agent_id` is None."""
        per_agent = {row["id"]: row for row in self.balancer.report()["per_agent"]}
        rows = self.agents()
        if agent_id is not None:
            rows = [row for row in rows if row["id"] == agent_id]
            if not rows:
                raise AgentError(f"agent_id: {agent_id!r} is not registered")
        for row in rows:
            totals = per_agent.get(row["id"], {})
            row["busy_s"] = totals.get("busy_s")
            row["utilization"] = totals.get("utilization")
        return {"agents": rows}

    # -- report -------------------------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        return self.balancer.report()

    # -- rebalancing --------------------------------------------------------------------------
    def rebalance(self, apply: bool) -> dict[str, Any]:
        enabled = self.balancer.coordinator.rebalancer is not None
        plan = self.balancer.rebalance(apply=apply)
        return {
            "enabled": enabled,
            "applied": apply,
            "migrations": [
                {"task_id": m.task_id, "source": m.source, "target": m.target} for m in plan
            ],
        }

    # -- tasks --------------------------------------------------------------------------------
    async def submit(self, payload: Any, **keywords: Any) -> dict[str, Any]:
        handle = await self.balancer.submit(payload, **keywords)
        self.book.add(handle)
        return task_view(handle)

    async def task(self, task_id: str, wait: float) -> dict[str, Any]:
        """A task's state and outcome, waiting up to `wait` seconds for it to end."""
        handle = self.book.get(task_id)
        if handle is not None:
            if not handle.done() and wait > 0:
                await asyncio.wait({handle}, timeout=min(wait, MAX_WAIT))
            return task_view(handle)
        record = self.balancer.result(task_id)
        if record is None:
            raise TaskRejected(f"task_id: no task {task_id!r} is known")
        return record_view(record)

    # -- configuration ------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return self.balancer.config.to_dict()

    def validate_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Check `changes` as `load_config` would (the whole result) without applying them, and
        say which changed keys `update` may apply live and which only a restart applies."""
        before = self.balancer.config.to_dict()
        after = self.balancer.config.updated(changes).to_dict()
        changed = sorted(k for k in after if after[k] != before[k])
        return {
            "valid": True,
            "changed": changed,
            "live": [k for k in changed if k in LIVE_KEYS],
            "restart_only": [k for k in changed if k not in LIVE_KEYS],
            "config": after,
        }

    def update_config(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply `changes` live through `Balancer.update_config` (only its live keys)."""
        return self.balancer.update_config(changes).to_dict()


def _breaker(breakers: dict[str, CircuitBreakerPolicy], agent_id: str, now: float) -> str | None:
    """The breaker's state at `now`, read without moving it (an open breaker past its timeout
    reads half_open, as the coordinator's next look will make it)."""
    breaker = breakers.get(agent_id)
    if breaker is None:
        return None
    reopen = breaker.reopen_at
    if reopen is not None and now >= reopen:
        return BreakerState.HALF_OPEN.value
    return breaker.state_label
