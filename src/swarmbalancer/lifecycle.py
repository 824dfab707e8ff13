"""What the end of an attempt does: learn from it (speed, error rate, breaker), then complete,
retry or fail the task, or finish it as cancelled."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from swarmbalancer.model import AgentState, Priority, Task, TaskState
from swarmbalancer.policies.adaptive import observe
from swarmbalancer.policies.breaker import BreakerState
from swarmbalancer.routing import Routing


class Outcome(StrEnum):
    """What became of a task after one attempt ended."""

    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Lifecycle(Routing):
    """Learning from attempts and settling their tasks: the coordinator's outcome part."""

    def _learn(self, agent: AgentState, task: Task, now: float, ok: bool, elapsed: float) -> None:
        cfg = self.config
        stats = agent.stats
        speed = stats.speed
        observe(stats, cfg.ewma_alpha, now, ok, task.estimate, elapsed)
        if stats.speed != speed:
            if stats.speed > self._max_speed:
                self._max_speed = stats.speed
            elif speed >= self._max_speed:  # the fastest agent slowed: who is fastest now?
                self._max_speed = max(a.stats.speed for a in self._agents)
        if ok and task.estimate is None:
            sample = elapsed * agent.stats.speed
            unit = self._unit_work
            self._unit_work = sample if unit is None else unit + cfg.ewma_alpha * (sample - unit)
        if not cfg.breaker_enabled:
            return
        breaker = self.breakers[agent.id]
        if ok and self._plain_successes and agent.id not in self._unhealthy:
            breaker.on_success(now, elapsed)  # without a slow-call rule, CLOSED stays CLOSED
            return
        before = breaker.state(now)
        if ok:
            breaker.on_success(now, elapsed)
        else:
            breaker.on_failure(now, elapsed)
        after = breaker.state(now)
        if after is before:
            return
        if after is BreakerState.OPEN:
            self._unhealthy[agent.id] = None
            self._reroute(self.store.evacuate(agent.id), now)
        elif after is BreakerState.CLOSED:
            if not agent.draining:
                self._unhealthy.pop(agent.id, None)
            agent.stats.error_rate = 0.0
            agent.ramp_from = now if cfg.slow_start > 0 else None

    def _finish_cancelled(
        self, task: Task, agent: AgentState, now: float, elapsed: float
    ) -> Outcome:
        """A running task cancelled by the user: its slot frees, nothing is learned or retried
        (`finish` then retires the agent if it was draining)."""
        agent_id = agent.id
        if agent_id in self._unhealthy:
            self.breakers[agent_id].release(now)  # a probe that says nothing about the agent
        self.recorder.attempt_cancelled(agent_id, elapsed)
        if task.period is not None:
            self._periodic[agent_id].pop(task.id, None)
        self.store.ack(task.id, now, ok=False, error="cancelled")
        task.state = TaskState.CANCELLED
        self.recorder.task_cancelled(task, now)
        self._dirty[agent_id] = None
        return Outcome.CANCELLED

    def _hold(self, agent: AgentState, now: float, until: float) -> None:
        """Keep an agent out of routing until `until` (a retry-after hint): its breaker is forced
        open and its queue moves to the other agents."""
        self.breakers[agent.id].hold(now, until)
        self._unhealthy[agent.id] = None
        self._reroute(self.store.evacuate(agent.id), now)

    def _complete(
        self, task: Task, now: float, *, ok: bool, error: str | None, result: Any = None
    ) -> Outcome:
        self.store.ack(task.id, now, ok=ok, error=error, result=result)
        self.recorder.task_finished(task, now, ok)
        return Outcome.DONE if ok else Outcome.FAILED

    def _retry(self, task: Task, now: float, agent_id: str) -> Outcome:
        cfg = self.config
        task.tried_agents = (*task.tried_agents, agent_id)
        if cfg.feedback and task.level < Priority.LOW:
            task.level = Priority(task.level + 1)
        backoff = min(cfg.retry_backoff * 2 ** (task.attempt - 1), cfg.retry_backoff_max)
        backoff *= 0.5 + 0.5 * self.rng.random()
        self.store.defer(task.id, now + backoff, now)
        self.recorder.retries += 1
        if backoff <= 0:
            self._reroute(self.store.due(now), now)
        return Outcome.RETRY
