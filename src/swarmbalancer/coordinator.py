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
from enum import StrEnum
from itertools import islice
from typing import Any, NamedTuple

from swarmbalancer.config import BalancerConfig, load_config
from swarmbalancer.errors import TaskRejected
from swarmbalancer.metrics.recorder import Recorder
from swarmbalancer.model import AgentSpec, AgentState, AgentStats, Priority, Task, TaskState
from swarmbalancer.policies.adaptive import Adaptive, observe
from swarmbalancer.policies.admission import PeriodicTask, admit
from swarmbalancer.policies.breaker import BreakerSettings, BreakerState, CircuitBreakerPolicy
from swarmbalancer.policies.disciplines import make_discipline
from swarmbalancer.policies.factory import make_router
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.policies.rebalance import Rebalancer, RebalanceSettings
from swarmbalancer.policies.routing import RoutingContext
from swarmbalancer.policies.stealing import StealSettings, plan_rescue, plan_steal
from swarmbalancer.store.base import Store
from swarmbalancer.store.memory import MemoryStore

#: Shared tasks an agent with room may place elsewhere before it takes the next one itself.
_LOOKAHEAD = 8

#: When a burst has drained to at most this many shared tasks per agent slot, with none arriving
#: meanwhile, the adaptive router places them all at once, longest first: the tail of a burst is
#: where placement decides the makespan.
_TAIL_PER_SLOT = 4

#: Holders of bound tasks an idle agent looks at, in turn, for one to take back.
_RESCUE_SAMPLE = 4


class Outcome(StrEnum):
    """What became of a task after one attempt ended."""

    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Assignment(NamedTuple):
    """Start `task` on `agent` now."""

    task: Task
    agent: AgentState


class Coordinator:
    """Routes, queues, dispatches, steals, rebalances and trips breakers for a set of agents."""

    def __init__(
        self, config: BalancerConfig | dict[str, Any] | None = None, *, store: Store | None = None
    ) -> None:
        self.config = cfg = load_config(config)
        self.rng = random.Random(cfg.seed)
        self.store: Store = store or MemoryStore(lambda: LevelQueue.from_config(cfg))
        self.router = make_router(cfg)
        self.recorder = Recorder(cfg.tenant_weights)
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
        # cfs needs every runtime reported; the other disciplines ignore `charge`
        self._charges = make_discipline(cfg.discipline, cfg.tenant_weights).uses_charge
        self.breakers: dict[str, CircuitBreakerPolicy] = {}
        self._ctx = RoutingContext(
            now=0.0, rng=self.rng, slow_start=cfg.slow_start, threshold=cfg.threshold
        )
        self._agents: list[AgentState] = []
        self._unhealthy: dict[str, None] = {}  # breaker not CLOSED, or draining
        self._dirty: dict[str, None] = {}
        self._idle: dict[str, None] = {}
        self._heavy: dict[str, None] = {}
        self._periodic: dict[str, dict[str, PeriodicTask]] = {}
        self._started = False
        self._unit_work: float | None = None
        self._late = self.router.late
        self._placer = self.router if isinstance(self.router, Adaptive) else None
        self._max_speed = 0.0  # the largest learned speed of any registered agent
        self._prefetch = cfg.prefetch
        self._hold_slots = (
            1 + cfg.prefetch
        )  # slots' worth of tasks an agent may hold under late binding
        self._tail = 0  # shared queue length at or below which a burst's tail is placed at once
        self._burst = False  # the shared queue exceeded `_tail` and nothing arrived since
        self._room: dict[str, None] = {}  # agents that may have room for a shared task
        self._holders: dict[str, None] = {}  # agents that may hold late-bound queued tasks
        self._active = 0  # registered agents not draining
        self._abandoned: list[Task] = []  # failed without running (park timeout)

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
        agent = self._agent_or_none(agent_id)
        if agent is None or agent.free_slots <= 0:
            return None
        return self._take(agent, now, self._gated(agent_id, now))

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
        agent_id = task.agent_id
        assert agent_id is not None, "finish() of a task that is not running"
        agent = self.store.agent(agent_id)
        elapsed = duration if duration is not None else now - (task.started_at or now)
        agent.busy_s += elapsed
        if cancelled:
            return self._finish_cancelled(task, agent, now, elapsed)
        self._learn(agent, task, now, ok, elapsed)
        if retry_after is not None and retry_after > 0 and self.config.breaker_enabled:
            self._hold(agent, now, now + retry_after)
        if self._charges:
            self.store.charge(agent_id, task, elapsed)
        self.recorder.attempt_finished(task, agent_id, elapsed, ok)
        if task.period is not None:
            self._periodic[agent_id].pop(task.id, None)
        self._dirty[agent_id] = None
        if ok:
            agent.completed += 1
            outcome = self._complete(task, now, ok=True, error=None, result=result)
        elif retryable and task.attempt <= task.max_retries:
            agent.failed += 1
            outcome = self._retry(task, now, agent_id)
        else:
            agent.failed += 1
            outcome = self._complete(task, now, ok=False, error=error or "failed")
        if agent_id in self._unhealthy:
            self._route_parked(now)  # a probe slot freed, or the breaker changed state
            self._retire_if_drained(agent, now)  # only a draining agent is retired: it is here
        return outcome

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

    def _finish_cancelled(
        self, task: Task, agent: AgentState, now: float, elapsed: float
    ) -> Outcome:
        """A running task cancelled by the user: its slot frees, nothing is learned or retried."""
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
        if agent_id in self._unhealthy:
            self._route_parked(now)
            self._retire_if_drained(agent, now)
        return Outcome.CANCELLED

    def _hold(self, agent: AgentState, now: float, until: float) -> None:
        """Keep an agent out of routing until `until` (a retry-after hint): its breaker is forced
        open and its queue moves to the other agents."""
        self.breakers[agent.id].hold(now, until)
        self._unhealthy[agent.id] = None
        self._reroute(self.store.evacuate(agent.id), now)

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
        if parked is not None:
            expiry = parked + timeout  # type: ignore[operator]
            if wake is None or expiry < wake:
                wake = expiry
        return wake

    def report(self) -> dict[str, Any]:
        """The metrics report (see docs/metrics.md)."""
        states = {a.id: self.breakers[a.id].state_label for a in self._agents}
        open_count = sum(1 for _ in self.store.open_tasks())
        return self.recorder.report(open_count, states)

    # -- routing ------------------------------------------------------------------------------
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
            if not panic and agent.id in self._unhealthy and not self._probe_ok(agent, now):
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

    # -- dispatch -----------------------------------------------------------------------------
    def _fill(self, agent_id: str, now: float, out: list[Assignment]) -> None:
        """Start tasks in the agent's free slots, top up its prefetch, note whether it has room."""
        agent = self._agent_or_none(agent_id)
        if agent is None:
            return
        gate = self._gated(agent_id, now)
        for _ in range(agent.free_slots):
            task = self._take(agent, now, gate)
            if task is None:
                break
            out.append(Assignment(task, agent))
        if not self._late or agent.draining or gate:
            self._room.pop(agent_id, None)
            return
        limit = agent.spec.capacity * self._hold_slots
        if self._prefetch:
            shared = self.store.shared_queue()
            while agent.in_flight + agent.queued < limit and len(shared):
                self._pull(agent, now, start=False)
        if agent.in_flight + agent.queued < limit:
            self._room[agent_id] = None
        else:
            self._room.pop(agent_id, None)

    def _bind_shared(self, now: float, out: list[Assignment]) -> None:
        """Let agents with room take shared tasks, longest-waiting agent first."""
        room, shared = self._room, self.store.shared_queue()
        for _ in range(len(room)):
            if not room or not len(shared):
                return
            agent_id = next(iter(room))
            del room[agent_id]  # _fill puts it back, at the end, if it still has room
            self._fill(agent_id, now, out)

    def _pull(self, agent: AgentState, now: float, *, start: bool) -> Task | None:
        """Bind shared tasks until one is bound to `agent` (started when `start`); None if the
        shared queue runs dry first. Tasks the router places elsewhere are bound there."""
        store = self.store
        ctx = self._context(now)
        if self._burst and len(store.shared_queue()) <= self._tail:
            self._burst = False
            self._place_tail(now)
            return store.claim(agent.id, now) if start and agent.queued else None
        for skipped in range(_LOOKAHEAD + 1):
            task = store.take_shared(now)
            if task is None:
                return None
            target = self._place(task, agent, now) if skipped < _LOOKAHEAD else agent
            if target is agent:
                if start:
                    task.expected_work = ctx.work_of(task)
                    store.start(agent.id, task, now)
                    self._started_task(task, now, store.shared_queue().saturated)
                else:
                    self._bind(task, agent, now)
                return task
            self._bind(task, target, now)
        return None

    def _place_tail(self, now: float) -> None:
        """Place a burst's last tasks at once, longest first, each where it is expected to finish
        first: with few tasks left, this order (LPT list scheduling) decides the makespan.

        The shared tasks with an estimate and the tasks bound ahead of time (reservations) are
        placed together; tasks without an estimate go back to the shared queue, to be pulled. A
        task only goes to an agent that has started nothing newer, so each agent still starts
        its tasks in submission order.
        """
        store, ctx, placer = self.store, self._context(now), self._placer
        if placer is None:
            return
        tasks: list[Task] = []
        unsized: list[Task] = []
        while (task := store.take_shared(now)) is not None:
            (unsized if task.estimate is None else tasks).append(task)
        for agent_id in list(self._holders):
            agent = self._agent_or_none(agent_id)
            if agent is None or not agent.queued or agent_id in self._unhealthy:
                continue
            for task in store.evacuate(agent_id):
                if task.affinity is None and task.period is None and task.estimate is not None:
                    tasks.append(task)
                else:
                    self._route(task, now)
        tasks.sort(key=lambda t: (-ctx.work_of(t), t.seq))
        for task in tasks:
            candidates = self._candidates(task, now)
            keeps_order = [a for a in candidates if a.last_seq < task.seq] or candidates
            self._bind(task, placer.best(task, keeps_order, ctx), now)
        for task in unsized:
            task.level = task.shared_level
            store.share(task, now)

    def _bind(self, task: Task, agent: AgentState, now: float) -> None:
        """Queue a task at an agent (booking its expected work) and have the agent filled."""
        task.expected_work = self._ctx.work_of(task)
        # its class at the agent is the one it had in the shared queue: a task aged there must not
        # overtake an older one of its class already bound to this agent
        task.level = task.shared_level
        self.store.enqueue(agent.id, task, now)
        if agent.queued > self.steal_settings.threshold:
            self._heavy[agent.id] = None
        self._holders[agent.id] = None
        self._dirty[agent.id] = None

    def _place(self, task: Task, asker: AgentState, now: float) -> AgentState:
        """The agent a shared task goes to, now that `asker` has room for it."""
        placer = self._placer
        if (
            placer is not None
            and placer.latency_only
            and not self._unhealthy
            and not task.tried_agents
            and asker.ramp_from is None
            and not asker.stats.error_rate
            and asker.stats.speed >= self._max_speed
            and asker.in_flight + asker.queued < asker.spec.capacity
        ):
            return (
                asker  # a free slot on the fastest agent, which never fails: none finishes sooner
            )
        ctx = self._context(now)
        candidates = self._candidates(task, now)
        if self._unhealthy:
            probe = self._half_open_target(task, candidates, now)
            if probe is not None:
                return probe
        if self._placer is not None:
            return self._placer.place(task, asker, candidates, ctx)
        limit = self._hold_slots
        room = [a for a in candidates if a.in_flight + a.queued < a.spec.capacity * limit]
        if asker not in room:
            room.append(asker)
        return self.router.choose(task, room, ctx)

    def _agent_or_none(self, agent_id: str) -> AgentState | None:
        try:
            return self.store.agent(agent_id)
        except KeyError:
            return None

    def _gated(self, agent_id: str, now: float) -> bool:
        """Must each dispatch to this agent ask its breaker (not CLOSED, and not in panic)?"""
        return agent_id in self._unhealthy and self.config.breaker_enabled and not self._panic(now)

    def _take(self, agent: AgentState, now: float, gate: bool) -> Task | None:
        """Claim the task for one free slot of `agent`: from its queue, else by stealing."""
        agent_id = agent.spec.id
        if gate and not self.breakers[agent_id].allow(now):
            return None
        store = self.store
        if agent.queued:
            task = store.claim(agent_id, now)
            if task is not None:
                self._started_task(task, now, store.queue(agent_id).saturated)
                return task
        if self._late and not agent.draining and len(store.shared_queue()):
            task = self._pull(agent, now, start=True)
            if task is not None:
                return task
        task = None
        if not agent.draining and self.config.steal_enabled:
            task = self._steal_for(agent, now)
            if task is None and self._holders:
                task = self._rescue_for(agent, now)
        if task is None:
            if gate:
                self.breakers[agent_id].release(now)
            self._idle[agent_id] = None
            return None
        self._started_task(task, now, store.queue(agent_id).saturated)
        return task

    def _started_task(self, task: Task, now: float, saturated: bool) -> None:
        """Book a task's start; `saturated`: were all four weighted levels busy at its pick?"""
        agent_id = task.agent_id
        assert agent_id is not None
        if self._idle:
            self._idle.pop(agent_id, None)
        agent = self.store.agent(agent_id)
        if task.seq > agent.last_seq:
            agent.last_seq = task.seq
        self.recorder.task_started(task, now, saturated=saturated)

    def _victims_exist(self) -> bool:
        threshold = self.steal_settings.threshold
        for agent_id in list(self._heavy):
            try:
                if self.store.agent(agent_id).queued > threshold:
                    return True
            except KeyError:
                pass
            del self._heavy[agent_id]
        return False

    def _rescue_for(self, thief: AgentState, now: float) -> Task | None:
        """Take back a late-bound task that `thief` would finish before its holder could."""
        holders = []
        table = self._holders
        for agent_id in list(islice(table, _RESCUE_SAMPLE)):
            del table[agent_id]
            holder = self._agent_or_none(agent_id)
            if holder is None or not holder.queued:
                continue
            table[agent_id] = None  # back at the end: the next idle agent looks at others
            if agent_id not in self._unhealthy:
                holders.append(holder)
        plan = plan_rescue(thief, holders, self.store.queue, now, self.steal_settings.max_moves)
        if plan is None:
            return None
        moved = self.store.move(plan.task_ids, plan.victim, plan.thief, now)
        self.recorder.steals += len(moved)
        return self.store.claim(thief.id, now) if moved else None

    def _steal_for(self, thief: AgentState, now: float) -> Task | None:
        if not self._heavy or not self._victims_exist():
            return None
        victims = [self.store.agent(a) for a in self._heavy]
        victims = [v for v in victims if not v.draining] or victims
        plan = plan_steal(thief, victims, self.store.queue, self.steal_settings, self.rng)
        if plan is None:
            return None
        moved = self.store.move(plan.task_ids, plan.victim, plan.thief, now)
        self.recorder.steals += len(moved)
        return self.store.claim(thief.id, now) if moved else None

    # -- outcomes -----------------------------------------------------------------------------
    def _learn(self, agent: AgentState, task: Task, now: float, ok: bool, elapsed: float) -> None:
        cfg = self.config
        stats = agent.stats
        speed = stats.speed
        observe(stats, alpha=cfg.ewma_alpha, now=now, ok=ok, work=task.estimate, duration=elapsed)
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

    def _rebalance(self, now: float) -> None:
        assert self.rebalancer is not None
        healthy = [a for a in self._agents if a.id not in self._unhealthy]
        for m in self.rebalancer.plan(healthy, self.store.queue, now):
            moved = self.store.move((m.task_id,), m.source, m.target, now)
            self.recorder.migrations += len(moved)
            self._dirty[m.target] = None


def _periodic(task: Task) -> PeriodicTask:
    assert task.period is not None and task.estimate is not None
    relative = None if task.deadline is None else task.deadline - task.submitted_at
    return PeriodicTask(execution=task.estimate, period=task.period, deadline=relative)
