"""Where a task may go and, when it is bound at submit, where it goes.

The candidates for a task (affinity, tried agents, breakers with their panic mode and half-open
probes), routing at submit (to the shared queue under late binding, else to an agent the router
picks), parking when no agent may take a task (and failing it after `parkTimeout`), and EDF
admission of periodic tasks. The routing strategies themselves are in `policies/routing.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from swarmbalancer.errors import TaskRejected
from swarmbalancer.model import AgentState, Task, TaskState
from swarmbalancer.policies.admission import PeriodicTask, admit
from swarmbalancer.policies.breaker import BreakerState
from swarmbalancer.policies.routing import RoutingContext
from swarmbalancer.swarm import SwarmState


class Routing(SwarmState):
    """Candidates, routing at submit, parking and admission: the coordinator's routing part."""

    def _candidates(self, task: Task, now: float) -> Sequence[AgentState]:
        agents = self._agents
        if not self._unhealthy and task.affinity is None and not task.tried_agents:
            return agents
        panic = self._panic(now)
        out = []
        for agent in agents:
            if agent.draining:
                continue
            if task.affinity is not None and not task.allows(agent.id, agent.spec.region):
                continue
            if agent.id in self._unhealthy and (
                self.breakers[agent.id].held(now)  # it asked to be left alone: even in panic
                or (not panic and not self._probe_ok(agent, now))
            ):
                continue
            out.append(agent)
        if task.tried_agents and len(out) > 1:
            fresh = [a for a in out if a.id not in task.tried_agents]
            return fresh or out
        return out

    def _probe_ok(self, agent: AgentState, now: float) -> bool:
        breaker = self.breakers[agent.id]
        state = breaker.state(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN:
            return agent.queued + agent.in_flight < breaker.probe_budget
        return False

    def _panic(self, now: float) -> bool:
        """Envoy's panic mode: with too few healthy agents, spread over all rather than none."""
        if not self.config.breaker_enabled or not self._agents:
            return False
        open_count = sum(
            1 for a in self._unhealthy if self.breakers[a].state(now) is BreakerState.OPEN
        )
        healthy = (len(self._agents) - open_count) / len(self._agents)
        return healthy < self.config.panic_threshold

    def _route(self, task: Task, now: float) -> None:
        if self._late and task.affinity is None and task.period is None:
            if self._active:
                store = self.store
                task.shared_level = task.level
                store.share(task, now)
                task.parked_at = None
                self._burst = task.estimate is not None and len(store.shared_queue()) > self._tail
            else:
                self.store.park(task, now)
            return
        candidates = self._candidates(task, now)
        if task.period is not None and candidates:
            candidates = [a for a in candidates if self._admits(a, task).accepted]
        if not candidates:
            self.store.park(task, now)
            return
        task.parked_at = None
        ctx = self._context(now)
        probe = self._half_open_target(task, candidates, now) if self._unhealthy else None
        agent = probe or self.router.choose(task, candidates, ctx)
        task.expected_work = ctx.work_of(task)
        agent_id = agent.spec.id
        self.store.enqueue(agent_id, task, now)
        if task.period is not None:
            self._periodic[agent_id][task.id] = _periodic(task)
        if agent.queued > self.steal_settings.threshold:
            self._heavy[agent_id] = None
        self._dirty[agent_id] = None

    def _context(self, now: float) -> RoutingContext:
        """The routing context, brought up to `now` and the learned mean work."""
        ctx = self._ctx
        ctx.now = now
        if self._unit_work is not None:
            ctx.unit_work = self._unit_work
        return ctx

    def _half_open_target(
        self, task: Task, candidates: Sequence[AgentState], now: float
    ) -> AgentState | None:
        """A half-open agent with probe budget left gets the next task, so recovery is seen."""
        if not self._unhealthy or task.tried_agents:
            return None
        for agent in candidates:
            if agent.id in self._unhealthy and not agent.draining:
                breaker = self.breakers[agent.id]
                if (
                    breaker.state(now) is BreakerState.HALF_OPEN
                    and agent.queued + agent.in_flight < breaker.probe_budget
                ):
                    return agent
        return None

    def _route_parked(self, now: float) -> None:
        """Give parked tasks (no eligible agent when they were routed) another chance; fail those
        parked for `parkTimeout`, so a task no agent will ever take cannot wait forever."""
        parked = self.store.unpark()
        if not parked:
            return
        timeout = self.config.park_timeout
        for task in parked:
            since = task.parked_at
            if timeout is not None and since is not None and now - since >= timeout:
                self._abandon(task, now, f"parkTimeout: no eligible agent for {timeout:g}s")
            else:
                self._route(task, now)

    def _park_shared(self, now: float) -> None:
        """With no agent left to bind them, shared tasks are parked (and time out if none comes)."""
        store = self.store
        while (task := store.take_shared(now)) is not None:
            store.park(task, now)

    def _abandon(self, task: Task, now: float, error: str) -> None:
        """Fail a task that is not running and never will: it leaves the store, is counted as
        failed and waits in `take_abandoned` for its driver."""
        task.error = error
        self.store.remove(task.id)  # marks it CANCELLED: a park timeout is a failure instead
        task.state = TaskState.FAILED
        task.finished_at = now
        self.recorder.task_finished(task, now, False)
        self._abandoned.append(task)

    def _reroute(self, tasks: list[Task], now: float) -> None:
        for task in tasks:
            self._route(task, now)

    def _check_placeable(self, task: Task) -> None:
        """Reject a task whose affinity names no registered agent id or region (with agents)."""
        agents = self._agents
        if agents and not any(task.allows(a.id, a.spec.region) for a in agents):
            wanted = ", ".join(sorted(task.affinity or ()))
            raise TaskRejected(f"affinity: no registered agent or region matches {wanted}")

    # -- admission (EDF) ----------------------------------------------------------------------
    def _admits(self, agent: AgentState, task: Task) -> Any:
        return admit(list(self._periodic[agent.id].values()), _periodic(task))

    def _check_admissible(self, task: Task, now: float) -> None:
        if self.config.discipline != "edf":
            raise TaskRejected("period: periodic tasks need the 'edf' discipline (admission)")
        if task.estimate is None:
            raise TaskRejected("estimate: a periodic task needs an estimate (its execution time)")
        candidates = self._candidates(task, now)
        verdicts = [self._admits(a, task) for a in candidates]
        if verdicts and not any(v.accepted for v in verdicts):
            raise TaskRejected(f"admission: {min(verdicts, key=lambda v: v.utilization).reason}")


def _periodic(task: Task) -> PeriodicTask:
    assert task.period is not None and task.estimate is not None
    relative = None if task.deadline is None else task.deadline - task.submitted_at
    return PeriodicTask(execution=task.estimate, period=task.period, deadline=relative)
