"""Drives a Coordinator in virtual time: the simulator's counterpart of the embedded runtime.

It does what `runtime.balancer.Balancer` does, with an event heap instead of asyncio: submit,
start what `dispatch` assigns, finish attempts when their modelled duration has passed, and call
`tick` when the coordinator's next timer is due. Every decision stays in the coordinator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from swarmbalancer.coordinator import Coordinator, Outcome
from swarmbalancer.model import AgentSpec, AgentState, Task
from swarmbalancer.sim.engine import EventLoop


class Attempt(NamedTuple):
    """How one attempt goes: how long it takes and whether it succeeds."""

    duration: float
    ok: bool


#: Models an attempt of `task` on `agent` starting at virtual time `now`.
AttemptModel = Callable[[Task, AgentState, float], Attempt]


class SimDriver:
    """Feeds a coordinator tasks and agent changes at given virtual times and runs it to the end."""

    def __init__(
        self,
        coordinator: Coordinator,
        model: AttemptModel,
        *,
        loop: EventLoop | None = None,
        on_start: Callable[[Task, AgentState, float, Attempt], None] | None = None,
        on_finish: Callable[[Task, float], None] | None = None,
    ) -> None:
        self.coord = coordinator
        self.model = model
        self.loop = loop or EventLoop()
        self.on_start = on_start
        self.on_finish = on_finish
        #: Called after every dispatch round (e.g. to release a submission held by maxQueueSize).
        self.on_pump: Callable[[], None] | None = None
        self.outstanding = 0
        self.pending_arrivals = 0
        self._tick_at: float | None = None

    # -- scheduling inputs --------------------------------------------------------------------
    def submit_at(self, when: float, task: Task) -> None:
        self.pending_arrivals += 1
        self.loop.at(when, self._arrive, task)

    def add_agent_at(self, when: float, spec: AgentSpec) -> None:
        self.loop.at(when, self._add_agent, spec)

    def remove_agent_at(self, when: float, agent_id: str) -> None:
        self.loop.at(when, self._remove_agent, agent_id)

    def run(self, until: float | None = None) -> None:
        """Run until every submitted task has finished (or virtual time `until`)."""
        self.loop.run(until=until, stop=self._finished)

    def _finished(self) -> bool:
        return self.outstanding == 0 and self.pending_arrivals == 0

    # -- events -------------------------------------------------------------------------------
    def _arrive(self, task: Task) -> None:
        self.pending_arrivals -= 1
        now = self.loop.now
        task.submitted_at = now
        accepted = self.coord.submit(task, now)
        if accepted is task:
            self.outstanding += 1
        self._pump()

    def submit_now(self, task: Task) -> Task:
        """Submit immediately at the current virtual time (for drivers feeding tasks lazily)."""
        accepted = self.coord.submit(task, self.loop.now)
        if accepted is task:
            self.outstanding += 1
        self._pump()
        return accepted

    def _add_agent(self, spec: AgentSpec) -> None:
        self.coord.add_agent(spec, self.loop.now)
        self._pump()

    def _remove_agent(self, agent_id: str) -> None:
        self.coord.remove_agent(agent_id, self.loop.now)
        self._pump()

    def _end_attempt(self, task: Task, attempt: Attempt) -> None:
        now = self.loop.now
        outcome = self.coord.finish(
            task,
            now,
            ok=attempt.ok,
            duration=attempt.duration,
            error=None if attempt.ok else "simulated failure",
        )
        if outcome is not Outcome.RETRY:
            self.outstanding -= 1
            if self.on_finish is not None:
                self.on_finish(task, now)
        self._pump()

    def _tick(self) -> None:
        self._tick_at = None
        self.coord.tick(self.loop.now)
        self._pump()

    def _pump(self) -> None:
        coord, loop = self.coord, self.loop
        now = loop.now
        assignments = coord.dispatch(now)
        for task in coord.take_abandoned():
            self.outstanding -= 1
            if self.on_finish is not None:
                self.on_finish(task, now)
        if assignments:
            model, on_start, at, end = self.model, self.on_start, loop.at, self._end_attempt
            for a in assignments:
                attempt = model(a.task, a.agent, now)
                if on_start is not None:
                    on_start(a.task, a.agent, now, attempt)
                at(now + attempt.duration, end, a.task, attempt)
        wake = coord.next_wakeup()
        if wake is not None and (self._tick_at is None or wake < self._tick_at):
            self._tick_at = wake
            loop.at(wake, self._tick)
        if self.on_pump is not None:
            self.on_pump()
