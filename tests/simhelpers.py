"""Small builders shared by coordinator and simulator tests."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from swarmbalancer.coordinator import Coordinator
from swarmbalancer.model import AgentSpec, AgentState, Task
from swarmbalancer.sim.driver import Attempt, SimDriver


@dataclass
class Trace:
    """Every attempt the driver started: (task id, agent id, start, end, ok)."""

    attempts: list[tuple[str, str, float, float, bool]] = field(default_factory=list)

    def record(self, task: Task, agent: AgentState, now: float, attempt: Attempt) -> None:
        self.attempts.append((task.id, agent.id, now, now + attempt.duration, attempt.ok))

    def by_task(self) -> dict[str, list[tuple[str, float, float, bool]]]:
        out: dict[str, list[tuple[str, float, float, bool]]] = defaultdict(list)
        for task_id, agent_id, start, end, ok in self.attempts:
            out[task_id].append((agent_id, start, end, ok))
        return out

    def max_concurrency(self, agent_id: str) -> int:
        edges = []
        for _, a, start, end, _ in self.attempts:
            if a == agent_id:
                edges += [(start, 1), (end, -1)]
        edges.sort(key=lambda e: (e[0], e[1]))
        level = peak = 0
        for _, d in edges:
            level += d
            peak = max(peak, level)
        return peak


def work_model(failing: dict[str, float] | None = None, seed: int = 0) -> Any:
    """Attempts last estimate / speed, the speed being the agent's hint (1.0 without one); agents
    in `failing` fail with the given probability."""
    rng = random.Random(seed)
    failing = failing or {}

    def model(task: Task, agent: AgentState, now: float) -> Attempt:
        work = task.estimate if task.estimate is not None else 0.01
        ok = rng.random() >= failing.get(agent.id, 0.0)
        return Attempt(duration=work / (agent.spec.speed_hint or 1.0), ok=ok)

    return model


def run_sim(
    config: dict[str, Any],
    agents: list[AgentSpec],
    tasks: list[tuple[float, Task]],
    failing: dict[str, float] | None = None,
    seed: int = 0,
    until: float = 1000.0,
) -> tuple[Coordinator, Trace, dict[str, Any]]:
    coord = Coordinator(config)
    trace = Trace()
    driver = SimDriver(coord, work_model(failing, seed), on_start=trace.record)
    for spec in agents:
        driver.add_agent_at(0.0, spec)
    for when, task in tasks:
        driver.submit_at(when, task)
    driver.run(until=until)  # a horizon, so a scheduling bug fails the test instead of hanging
    return coord, trace, coord.report()
