"""The coordinator: the one place where policies meet the store.

It is synchronous and reads no clock: every call takes `now`. The embedded runtime drives it from
an asyncio loop with a real clock; the simulator drives it from an event heap in virtual time.
Both call the same four things: `submit`, `dispatch` (which tasks start now, where), `finish`
(an attempt ended) and `tick` (timers: retries, leases, rebalancing, park timeouts).

Binding. With a load-aware strategy a task waits in the shared queue (levels, aging, discipline)
and is bound to an agent only when some agent has room for it: a free slot, or one of its
`prefetch` places per slot. The router then picks the agent (`Adaptive.place`: least expected
finish time, which may reserve the task for a busy but faster agent). Oblivious strategies
(round robin, weighted, random), tasks with `affinity` and periodic tasks are bound at submit and
queue at their agent, where stealing and rebalancing can still move them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from swarmbalancer.binding import Assignment, Binding
from swarmbalancer.config import BalancerConfig, load_config
from swarmbalancer.lifecycle import Outcome
from swarmbalancer.metrics.recorder import Recorder
from swarmbalancer.model import AgentSpec, AgentState, AgentStats, Task
from swarmbalancer.policies.adaptive import Adaptive
from swarmbalancer.policies.breaker import BreakerSettings, BreakerState, CircuitBreakerPolicy
from swarmbalancer.policies.disciplines import make_discipline
from swarmbalancer.policies.factory import make_router
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.policies.rebalance import Migration, Rebalancer, RebalanceSettings
from swarmbalancer.policies.routing import RoutingContext
from swarmbalancer.policies.stealing import StealSettings
from swarmbalancer.store.base import Store
from swarmbalancer.store.memory import MemoryStore

__all__ = ["Assignment", "Coordinator", "Outcome"]

#: When a burst has drained to at most this many shared tasks per agent slot, with none arriving
#: meanwhile, the adaptive router places them all at once, longest first: the tail of a burst is
#: where placement decides the makespan.
_TAIL_PER_SLOT = 4


class Coordinator(Binding):
    """Routes, queues, dispatches, steals, rebalances and trips breakers for a set of agents.

    Its private parts live next to it: `routing.py` (candidates, routing at submit, parking),
    `binding.py` (filling slots: late binding, stealing) and `lifecycle.py` (an attempt's end),
    over the state `swarm.py` declares.
    """

    def __init__(
        self, config: BalancerConfig | dict[str, Any] | None = None, *, store: Store | None = None
    ) -> None:
        self.config = cfg = load_config(config)
        self.rng = random.Random(cfg.seed)
        self.store = store or MemoryStore(lambda: LevelQueue.from_config(cfg))
        self.router = make_router(cfg)
        self.recorder = Recorder(cfg.tenant_weights, latency_samples=cfg.latency_samples)
        self.steal_settings = StealSettings(
            cfg.steal_threshold,
            cfg.steal_percentage,
            cfg.victim_selection,
            cfg.locality_aware,
            cfg.max_moves,
        )
        self.rebalancer = (
            Rebalancer(
                RebalanceSettings(
                    cfg.check_interval,
                    cfg.migration_threshold,
                    cfg.cooldown_period,
                    cfg.max_migrations,
                    cfg.max_moves,
                )
            )
            if cfg.rebalance_enabled
            else None
        )
        self._breaker_settings = BreakerSettings.from_config(cfg)
        self._plain_successes = self._breaker_settings.slow_call_duration is None
        self._charges = make_discipline(cfg.discipline, cfg.tenant_weights).uses_charge
        self.breakers = {}
        self._ctx = RoutingContext(
            now=0.0, rng=self.rng, slow_start=cfg.slow_start, threshold=cfg.threshold
        )
        self._agents = []
        self._unhealthy = {}
        self._dirty = {}
        self._idle = {}
        self._heavy = {}
        self._periodic = {}
        self._started = False
        self._unit_work = None
        self._late = self.router.late
        self._placer = self.router if isinstance(self.router, Adaptive) else None
        self._max_speed = 0.0
        self._prefetch = cfg.prefetch
        self._hold_slots = 1 + cfg.prefetch
        self._tail = 0
        self._burst = False
        self._room = {}
        self._holders = {}
        self._active = 0
        self._abandoned = []

    # -- agents -------------------------------------------------------------------------------
    def add_agent(self, spec: AgentSpec, now: float) -> AgentState:
        """Register an agent; one joining a running swarm ramps up over `slowStart` seconds."""
        ramp = now if self._started and self.config.slow_start > 0 else None
        hint = spec.speed_hint
        stats = AgentStats(speed=hint or 1.0, hinted=hint is not None)
        state = AgentState(spec=spec, stats=stats, joined_at=now, ramp_from=ramp)
        self.store.add_agent(state)
        self.breakers[spec.id] = CircuitBreakerPolicy(self._breaker_settings)
        self._periodic[spec.id] = {}
        self._agents.append(state)
        self._max_speed = max(self._max_speed, stats.speed)
        self._active += 1
        self._tail += _TAIL_PER_SLOT * spec.capacity
        self.recorder.agent_joined(state, now)
        self._dirty[spec.id] = None
        self._route_parked(now)
        return state

    def remove_agent(self, agent_id: str, now: float) -> None:
        """Stop giving the agent work; its queue moves to the others, its running tasks finish."""
        agent = self.store.agent(agent_id)
        if not agent.draining:
            self._active -= 1
        agent.draining = True
        self._unhealthy[agent_id] = None
        self._room.pop(agent_id, None)
        self._reroute(self.store.evacuate(agent_id), now)
        if not self._active:
            self._park_shared(now)
        self._retire_if_drained(agent, now)

    def set_strategy(self, config: BalancerConfig, now: float) -> None:
        """Route with `config.strategy` from now on; what was learned about agents stays.

        Leaving late binding binds the shared queue's tasks at once, in their order, with the new
        router; entering it leaves tasks already bound where they are (agents serve their own
        queue first), and new tasks wait in the shared queue.
        """
        self.config = config
        self.router = make_router(config)
        was_late, self._late = self._late, self.router.late
        self._placer = self.router if isinstance(self.router, Adaptive) else None
        self._room.clear()
        self._burst = False
        if was_late and not self._late:
            store = self.store
            waiting = []
            while (task := store.take_shared(now)) is not None:
                task.level = task.shared_level
                waiting.append(task)
            self._reroute(waiting, now)
        for agent in self._agents:
            self._dirty[agent.id] = None

    def queued_total(self) -> int:
        """Tasks waiting for a slot: in the shared queue and at agents, all together."""
        shared, bound = self.store.queued_counts()
        return shared + bound

    def take_abandoned(self) -> Sequence[Task]:
        """Tasks that failed without an attempt (parked past `parkTimeout`) since the last call:
        a driver settles them as it settles a final failure."""
        if not self._abandoned:
            return ()
        out, self._abandoned = self._abandoned, []
        return out

    def agent_ids(self) -> list[str]:
        return [a.id for a in self._agents]

    def _retire_if_drained(self, agent: AgentState, now: float) -> None:
        if not agent.draining or agent.in_flight or agent.queued:
            return
        self.store.remove_agent(agent.id)
        self._agents.remove(agent)
        self._max_speed = max((a.stats.speed for a in self._agents), default=0.0)
        self._tail -= _TAIL_PER_SLOT * agent.spec.capacity
        for table in (
            self._unhealthy,
            self._dirty,
            self._idle,
            self._heavy,
            self._room,
            self._holders,
        ):
            table.pop(agent.id, None)
        self._periodic.pop(agent.id, None)
        self.router.forget(agent.id)
        if self.rebalancer is not None:
            self.rebalancer.forget(agent.id)
        self.recorder.agent_left(agent.id, now)

    # -- tasks --------------------------------------------------------------------------------
    def submit(self, task: Task, now: float) -> Task:
        """Accept and route a task; a repeated idempotency key returns the first task instead.

        A task no registered agent could ever run is rejected before anything is recorded.
        """
        if task.affinity is not None:
            self._check_placeable(task)
        if task.period is not None:
            self._check_admissible(task, now)
        accepted, created = self.store.put(task)
        if not created:
            return accepted
        self._started = True
        self.recorder.task_accepted(task, now)
        self._route(task, now)
        return task

    def dispatch(self, now: float) -> list[Assignment]:
        """Every task that should start now, each on an agent with a free slot."""
        out: list[Assignment] = []
        shared = self.store.shared_queue()
        while True:
            if self._dirty:
                dirty = list(self._dirty)
                self._dirty.clear()
                for agent_id in dirty:
                    self._fill(agent_id, now, out)
            if self._room and len(shared):
                self._bind_shared(now, out)  # binding may mark other agents dirty
            if not self._dirty:
                break
        if self._idle and self.config.steal_enabled and self._victims_exist():
            for agent_id in list(self._idle):
                self._fill(agent_id, now, out)
                if not self._victims_exist():
                    break  # nothing left worth stealing: the other idle agents stay idle
        return out

    def next_for(self, agent_id: str, now: float) -> Task | None:
        """The task `agent_id` should start next in a slot it just freed, claimed; None if none.

        This is `dispatch` for one slot of one agent (same queue, breaker and stealing rules), so
        a runtime can keep a worker busy without a round trip through the event loop.
        """
        try:
            agent = self.store.agent(agent_id)
        except KeyError:
            return None
        return self._next_of(agent, now)

    def _next_of(self, agent: AgentState, now: float) -> Task | None:
        """`next_for` an agent already looked up."""
        if agent.in_flight >= agent.spec.capacity:
            return None
        agent_id = agent.id
        return self._take(agent, now, agent_id in self._unhealthy and self._gated(agent_id, now))

    def finish(
        self,
        task: Task,
        now: float,
        *,
        ok: bool,
        error: str | None = None,
        duration: float | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        cancelled: bool = False,
        result: Any = None,
    ) -> Outcome:
        """An attempt of `task` ended; learn from it, then complete (recording `result`), retry
        or fail the task.

        `retryable=False` fails it without retries; `retry_after` holds the agent out of routing
        for that many seconds (its breaker forced open); `cancelled` finishes it as cancelled by
        the user: neither a failed attempt nor a retry.
        """
        if ok and not cancelled and retry_after is None:
            return self.succeeded(task, now, duration, result)
        agent_id = task.agent_id
        assert agent_id is not None, "finish() of a task that is not running"
        agent = self.store.agent(agent_id)
        elapsed = duration if duration is not None else now - (task.started_at or now)
        agent.busy_s += elapsed
        if cancelled:
            outcome = self._finish_cancelled(task, agent, now, elapsed)
            if agent_id in self._unhealthy:
                self._route_parked(now)
                self._retire_if_drained(agent, now)
            return outcome
        self._learn(agent, task, now, ok, elapsed)
        if retry_after is not None and retry_after > 0 and self.config.breaker_enabled:
            self._hold(agent, now, now + retry_after)
        if self._charges:
            self.store.charge(agent_id, task, elapsed)
        if task.period is not None:
            self._periodic[agent_id].pop(task.id, None)
        self._dirty[agent_id] = None
        if ok:  # held out by a retry-after hint, yet successful
            agent.completed += 1
            self.store.ack(task.id, now, ok=True, result=result)
            self.recorder.task_completed(task, agent_id, elapsed, now)
            outcome = Outcome.DONE
        else:
            agent.failed += 1
            self.recorder.attempt_finished(task, agent_id, elapsed, False)
            if retryable and task.attempt <= task.max_retries:
                outcome = self._retry(task, now, agent_id)
            else:
                outcome = self._complete(task, now, ok=False, error=error or "failed")
        if agent_id in self._unhealthy:
            self._route_parked(now)  # a probe slot freed, or the breaker changed state
            self._retire_if_drained(agent, now)  # only a draining agent is retired: it is here
        return outcome

    def succeeded(
        self, task: Task, now: float, duration: float | None = None, result: Any = None
    ) -> Outcome:
        """An attempt of `task` ended well: `finish(task, now, ok=True, duration=duration,
        result=result)`, the path almost every attempt takes, without its branches."""
        agent_id = task.agent_id
        assert agent_id is not None, "finish() of a task that is not running"
        self._succeeded(self.store.agent(agent_id), task, now, duration, result)
        return Outcome.DONE

    def succeeded_next(
        self, task: Task, now: float, duration: float | None = None, result: Any = None
    ) -> Task | None:
        """`succeeded(task, ...)`, then `next_for` the slot it freed: a busy worker's one call
        per task."""
        agent_id = task.agent_id
        assert agent_id is not None, "finish() of a task that is not running"
        agent = self.store.agent(agent_id)
        self._succeeded(agent, task, now, duration, result)
        if agent.draining:  # it may have been retired just now: look it up again
            return self.next_for(agent_id, now)
        return self._next_of(agent, now)

    def _succeeded(
        self, agent: AgentState, task: Task, now: float, duration: float | None, result: Any
    ) -> None:
        agent_id = agent.id
        elapsed = duration if duration is not None else now - (task.started_at or now)
        agent.busy_s += elapsed
        self._learn(agent, task, now, True, elapsed)
        if self._charges:
            self.store.charge(agent_id, task, elapsed)
        if task.period is not None:
            self._periodic[agent_id].pop(task.id, None)
        self._dirty[agent_id] = None
        agent.completed += 1
        self.store.ack(task.id, now, ok=True, result=result)
        self.recorder.task_completed(task, agent_id, elapsed, now)
        if agent_id in self._unhealthy:
            self._route_parked(now)  # a probe slot freed, or the breaker changed state
            self._retire_if_drained(agent, now)  # only a draining agent is retired: it is here

    def cancel(self, task_id: str, now: float) -> Task | None:
        """Cancel a task that is not running (queued, parked, delayed for a retry) and return
        it; None when it is running (only its attempt's end can finish it) or unknown."""
        task = self.store.remove(task_id)
        if task is None:
            return None
        if task.period is not None:
            for periodic in self._periodic.values():
                periodic.pop(task_id, None)
        self.recorder.task_cancelled(task, now)
        return task

    def tick(self, now: float) -> None:
        """Run what is due at `now`: delayed retries, expired leases, a rebalancing cycle, parked
        tasks' timeouts."""
        due = self.store.due(now)
        if due:
            self._reroute(due, now)
        for task in self.store.expired(now):
            self.finish(task, now, ok=False, error="lease expired")
        if self.rebalancer is not None and self.rebalancer.due(now):
            self._rebalance(now)
        for agent_id in list(self._unhealthy):
            if self.breakers[agent_id].state(now) is BreakerState.HALF_OPEN:
                self._dirty[agent_id] = None
        self._route_parked(now)

    def next_wakeup(self) -> float | None:
        """The earliest time `tick` has something to do, or None.

        Only timers that can change something count, so idle virtual time costs nothing: the
        rebalancer wakes only while tasks are queued at agents (all it can move).
        """
        store = self.store
        wake = store.next_due()
        if self.rebalancer is not None and store.queued_counts()[1]:
            check = self.rebalancer.next_check
            if wake is None or check < wake:
                wake = check
        for agent_id in self._unhealthy:
            reopen = self.breakers[agent_id].reopen_at
            if reopen is not None and (wake is None or reopen < wake):
                wake = reopen
        timeout = self.config.park_timeout
        parked = store.oldest_parked() if timeout is not None else None
        if parked is not None and timeout is not None:
            expiry = parked + timeout
            if wake is None or expiry < wake:
                wake = expiry
        return wake

    def report(self) -> dict[str, Any]:
        """The metrics report (see docs/metrics.md)."""
        states = {a.id: self.breakers[a.id].state_label for a in self._agents}
        open_count = sum(1 for _ in self.store.open_tasks())
        return self.recorder.report(open_count, states)

    def rebalance(self, now: float, *, apply: bool) -> list[Migration]:
        """A rebalancing cycle on demand: the migrations made (`apply`), or those it would make
        with nothing moved and no schedule or cooldown changed; none while rebalancing is off."""
        if self.rebalancer is None:
            return []
        if apply:
            return self._rebalance(now)
        healthy = [a for a in self._agents if a.id not in self._unhealthy]
        return self.rebalancer.preview(healthy, self.store.queue, now)

    def _rebalance(self, now: float) -> list[Migration]:
        assert self.rebalancer is not None
        healthy = [a for a in self._agents if a.id not in self._unhealthy]
        done: list[Migration] = []
        for m in self.rebalancer.plan(healthy, self.store.queue, now):
            moved = self.store.move((m.task_id,), m.source, m.target, now)
            self.recorder.migrations += len(moved)
            self._dirty[m.target] = None
            if moved:
                done.append(m)
        return done
