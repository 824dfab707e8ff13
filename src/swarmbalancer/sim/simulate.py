"""Simulates a workload file: the same coordinator and policies as `run`, in virtual time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from swarmbalancer.config import BalancerConfig
from swarmbalancer.coordinator import Coordinator
from swarmbalancer.errors import QueueFull
from swarmbalancer.model import AgentState, Task
from swarmbalancer.sim.driver import Attempt, SimDriver
from swarmbalancer.sim.timeline import Timeline
from swarmbalancer.workload import (
    FaultPlan,
    TaskRecord,
    Workload,
    agent_specs,
    attempt_outcome,
    iter_tasks,
    membership_events,
    payload_work,
)
from swarmbalancer.workload.tenancy import with_tenants


class WorkloadSimulation:
    """One simulated run of a workload under one configuration; a `timeline` samples it."""

    def __init__(
        self, workload: Workload, config: BalancerConfig, *, timeline: Timeline | None = None
    ) -> None:
        self.workload = workload
        self.config = with_tenants(config, workload)
        self.coordinator = Coordinator(self.config)
        # The true speeds, for the attempt model and the bound; the balancer only gets the hints.
        self.speeds = workload.agent_speeds()
        self.coordinator.recorder.set_reference_speeds(self.speeds)
        self.faults = FaultPlan.from_workload(workload)
        self.driver = SimDriver(self.coordinator, self._attempt)
        self.timeline = timeline
        self._records: Iterator[TaskRecord] = iter(())
        self._held: TaskRecord | None = None  # an arrival waiting for room under maxQueueSize
        if self.config.max_queue_size is not None:
            self.driver.on_pump = self._release_held

    def _attempt(self, task: Task, agent: AgentState, now: float) -> Attempt:
        if not self.faults:  # what attempt_outcome gives without faults, without its lookups
            return Attempt(duration=task.payload["work"] / self.speeds[agent.id], ok=True)
        outcome = attempt_outcome(
            seed=self.workload.seed,
            task_id=task.id,
            attempt=task.attempt,
            agent_id=agent.id,
            speed=self.speeds[agent.id],
            work=payload_work(task),
            start=now,
            faults=self.faults,
        )
        return Attempt(duration=outcome.duration, ok=not outcome.failed)

    def run(self) -> dict[str, Any]:
        """Run to the last completion and return the report (same keys as `run --json`)."""
        specs = agent_specs(self.workload)
        events = membership_events(self.workload)
        joining_later = {e.agent_id for e in events if e.kind == "join" and e.time > 0}
        for spec in specs:
            if spec.id not in joining_later:
                self.driver.add_agent_at(0.0, spec)
        by_id = {s.id: s for s in specs}
        for event in events:
            if event.kind == "join" and event.time > 0:
                self.driver.add_agent_at(event.time, by_id[event.agent_id])
            elif event.kind == "leave":
                self.driver.remove_agent_at(event.time, event.agent_id)
        self._records = iter_tasks(self.workload)
        self._schedule_next()
        if self.timeline is not None:
            self.timeline.attach(self.driver)
        self.driver.run()
        if self.timeline is not None:
            self.timeline.finish()
        return self.coordinator.report()

    def _schedule_next(self) -> None:
        record = next(self._records, None)
        if record is not None:
            self.driver.pending_arrivals += 1
            self.driver.loop.at(record.arrival, self._arrive, record)

    def _arrive(self, record: TaskRecord) -> None:
        if self._full():
            if self.config.queue_full == "raise":
                raise QueueFull(f"maxQueueSize: {self.config.max_queue_size} tasks already queued")
            self._held = record  # as `run` awaits submit: later arrivals wait behind this one
            return
        self._submit(record)

    def _full(self) -> bool:
        limit = self.config.max_queue_size
        return limit is not None and self.coordinator.queued_total() >= limit

    def _release_held(self) -> None:
        record = self._held
        if record is not None and not self._full():
            self._held = None
            self._submit(record)

    def _submit(self, record: TaskRecord) -> None:
        driver = self.driver
        driver.pending_arrivals -= 1
        now = driver.loop.now
        task = record.to_task(now=now, max_retries=self.config.max_retries)
        task.payload = {"id": record.id, "work": record.work}
        self._schedule_next()
        driver.submit_now(task)


def simulate(
    workload: Workload, config: BalancerConfig, *, timeline: Timeline | None = None
) -> dict[str, Any]:
    """The report of one simulated run; `timeline`, when given, samples it along the way."""
    return WorkloadSimulation(workload, config, timeline=timeline).run()
