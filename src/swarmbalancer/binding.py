"""Filling agents' slots: late binding of shared tasks, a burst's tail, stealing and rescue.

Under late binding a task waits in the shared queue until an agent has room (a free slot or a
prefetch place); the router then places it on that agent, another with room, or a busy agent
expected to finish it sooner (a reservation). An idle agent steals from an overloaded one, or
takes back a reserved task it would finish before its holder.
"""

from __future__ import annotations

from itertools import islice
from typing import NamedTuple

from swarmbalancer.lifecycle import Lifecycle
from swarmbalancer.model import AgentState, Task
from swarmbalancer.policies.stealing import StealPlan, plan_rescue, plan_steal

#: Shared tasks an agent with room may place elsewhere before it takes the next one itself.
_LOOKAHEAD = 8

#: Holders of bound tasks an idle agent looks at, in turn, for one to take back.
_RESCUE_SAMPLE = 4


class Assignment(NamedTuple):
    """Start `task` on `agent` now."""

    task: Task
    agent: AgentState


class Binding(Lifecycle):
    """Which task each free slot starts, and which agent a shared task is bound to."""

    def _fill(self, agent_id: str, now: float, out: list[Assignment]) -> None:
        """Start tasks in the agent's free slots, top up its prefetch, note whether it has room."""
        agent = self._agent_or_none(agent_id)
        if agent is None:
            return
        gate = self._gated(agent_id, now)
        for _ in range(agent.free_slots):
            task = self._take(agent, now, gate, out)
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

    def _pull(
        self,
        agent: AgentState,
        now: float,
        *,
        start: bool,
        out: list[Assignment] | None = None,
    ) -> Task | None:
        """Bind shared tasks until one is bound to `agent` (started when `start`); None if the
        shared queue runs dry first. Tasks the router places elsewhere are bound there, or, on a
        healthy agent with a free slot and `out` given, started there."""
        store = self.store
        shared = store.shared_queue()
        ctx = self._context(now)  # `now` and the learned mean work, for placement and booking
        if self._burst and len(shared) <= self._tail:
            self._burst = False
            self._place_tail(now)
            return store.claim(agent.id, now) if start and agent.queued else None
        fastest = self._fastest_with_room(agent)
        skipped = 0
        while True:  # at most _LOOKAHEAD + 1 turns: the last one binds to `agent`
            task = store.take_shared(now)
            if task is None:
                return None
            if (fastest and not task.tried_agents) or skipped == _LOOKAHEAD:
                target = agent
            else:
                target = self._place(task, agent, now)
            if target is agent:
                if start:
                    estimate = task.estimate  # ctx.work_of(task), without its call
                    task.expected_work = ctx.unit_work if estimate is None else estimate
                    store.start(agent.id, task, now)
                    self._started_task(task, agent, now, shared.saturated)
                else:
                    self._bind(task, agent, now)
                return task
            if (
                out is not None
                and target.in_flight + target.queued < target.spec.capacity
                and target.id not in self._unhealthy
            ):
                self._start_shared(task, target, now, shared.saturated)
                out.append(Assignment(task, target))
            else:
                self._bind(task, target, now)
            skipped += 1

    def _start_shared(self, task: Task, agent: AgentState, now: float, saturated: bool) -> None:
        """Start a task just taken from the shared queue on `agent`, which has a free slot."""
        task.expected_work = self._ctx.work_of(task)
        self.store.start(agent.id, task, now)
        self._started_task(task, agent, now, saturated)

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
        """Queue a task at an agent (booking its expected work) and, if a slot of it is free,
        have the agent filled; a busy agent takes it when its running task ends."""
        task.expected_work = self._ctx.work_of(task)
        # its class at the agent is the one it had in the shared queue: a task aged there must not
        # overtake an older one of its class already bound to this agent
        task.level = task.shared_level
        self.store.enqueue(agent.id, task, now)
        if agent.queued > self.steal_settings.threshold:
            self._heavy[agent.id] = None
        self._holders[agent.id] = None
        if agent.in_flight < agent.spec.capacity:
            self._dirty[agent.id] = None

    def _place(self, task: Task, asker: AgentState, now: float) -> AgentState:
        """The agent a shared task goes to, now that `asker` has room for it."""
        placer = self._placer
        if not task.tried_agents and self._fastest_with_room(asker):
            return asker
        ctx = self._context(now)
        candidates = self._candidates(task, now)
        if self._unhealthy:
            probe = self._half_open_target(task, candidates, now)
            if probe is not None:
                return probe
        if placer is not None:
            return placer.place(task, asker, candidates, ctx)
        limit = self._hold_slots
        room = [a for a in candidates if a.in_flight + a.queued < a.spec.capacity * limit]
        if asker not in room:
            room.append(asker)
        return self.router.choose(task, room, ctx)

    def _fastest_with_room(self, asker: AgentState) -> bool:
        """Is `asker` the fastest agent, never failing, with a free slot, while routing looks
        at latency alone? Then no agent finishes a task sooner (one not yet tried elsewhere)."""
        placer = self._placer
        return (
            placer is not None
            and placer.latency_only
            and not self._unhealthy
            and asker.ramp_from is None
            and not asker.stats.error_rate
            and asker.stats.speed >= self._max_speed
            and asker.in_flight + asker.queued < asker.spec.capacity
        )

    def _gated(self, agent_id: str, now: float) -> bool:
        """Must each dispatch to this agent ask its breaker (not CLOSED, and not in panic)?"""
        if agent_id not in self._unhealthy or not self.config.breaker_enabled:
            return False
        return not self._panic(now) or self.breakers[agent_id].held(now)

    def _take(
        self, agent: AgentState, now: float, gate: bool, out: list[Assignment] | None = None
    ) -> Task | None:
        """Claim the task for one free slot of `agent`: from its queue, else from the shared
        queue, else by stealing. Shared tasks placed on another idle agent on the way start
        there at once when `out` collects assignments."""
        agent_id = agent.id
        if gate and not self.breakers[agent_id].allow(now):
            return None
        store = self.store
        if agent.queued:
            task = store.claim(agent_id, now)
            if task is not None:
                self._started_task(task, agent, now, store.queue(agent_id).saturated)
                return task
        pulled = self._late and not agent.draining and bool(store.shared_queue())
        if pulled:
            task = self._pull(agent, now, start=True, out=out)
            if task is not None:
                return task
        task = None
        if not agent.draining and self.config.steal_enabled:
            task = self._steal_for(agent, now)
            # shared tasks placed elsewhere just now were placed on the freshest estimates:
            # taking one back at once would only undo that
            if task is None and self._holders and not pulled:
                task = self._rescue_for(agent, now)
        if task is None:
            if gate:
                self.breakers[agent_id].release(now)
            self._idle[agent_id] = None
            return None
        self._started_task(task, agent, now, store.queue(agent_id).saturated)
        return task

    def _started_task(self, task: Task, agent: AgentState, now: float, saturated: bool) -> None:
        """Book a task's start on `agent`; `saturated`: were all four weighted levels busy at
        its pick?"""
        if self._idle:
            self._idle.pop(agent.id, None)
        if task.seq > agent.last_seq:
            agent.last_seq = task.seq
        self.recorder.task_started(task, now, saturated)

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
        return self._carry_out(plan, now)

    def _steal_for(self, thief: AgentState, now: float) -> Task | None:
        if not self._heavy or not self._victims_exist():
            return None
        victims = [self.store.agent(a) for a in self._heavy]
        victims = [v for v in victims if not v.draining] or victims
        plan = plan_steal(thief, victims, self.store.queue, self.steal_settings, self.rng)
        return self._carry_out(plan, now)

    def _carry_out(self, plan: StealPlan | None, now: float) -> Task | None:
        """Move a steal's (or rescue's) tasks to the thief, count them, and claim its next."""
        if plan is None:
            return None
        moved = self.store.move(plan.task_ids, plan.victim, plan.thief, now)
        self.recorder.steals += len(moved)
        return self.store.claim(plan.thief, now) if moved else None
