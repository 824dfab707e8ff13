"""The coordinator's state, declared once and typed: its collaborators, its agents and the small
tables that say which agents need a look.

`Coordinator` sets every attribute in its `__init__`; its parts (`routing.py`, `binding.py`,
`lifecycle.py`) are classes it inherits from, each reading and updating this state directly so
the hot path pays no indirection.
"""

from __future__ import annotations

import random

from swarmbalancer.config import BalancerConfig
from swarmbalancer.metrics.recorder import Recorder
from swarmbalancer.model import AgentState, Task
from swarmbalancer.policies.adaptive import Adaptive
from swarmbalancer.policies.admission import PeriodicTask
from swarmbalancer.policies.breaker import BreakerSettings, CircuitBreakerPolicy
from swarmbalancer.policies.rebalance import Rebalancer
from swarmbalancer.policies.routing import Router, RoutingContext
from swarmbalancer.policies.stealing import StealSettings
from swarmbalancer.store.base import Store


class SwarmState:
    """The attributes every part of the coordinator shares (set by `Coordinator.__init__`).

    The `dict[str, None]` tables are ordered sets of agent ids.
    """

    config: BalancerConfig
    rng: random.Random
    store: Store
    router: Router
    recorder: Recorder
    steal_settings: StealSettings
    rebalancer: Rebalancer | None
    breakers: dict[str, CircuitBreakerPolicy]
    _breaker_settings: BreakerSettings
    _plain_successes: bool  # no slow-call rule: a success never changes a CLOSED breaker
    _charges: bool  # the discipline needs every runtime reported (cfs)
    _ctx: RoutingContext
    _agents: list[AgentState]
    _unhealthy: dict[str, None]  # breaker not CLOSED, or draining
    _dirty: dict[str, None]  # agents to fill at the next dispatch
    _idle: dict[str, None]  # agents that found nothing to start
    _heavy: dict[str, None]  # agents that may hold more than the steal threshold
    _periodic: dict[str, dict[str, PeriodicTask]]  # periodic tasks admitted at each agent
    _started: bool  # a task was accepted: agents joining now ramp up
    _unit_work: float | None  # learned work of a task without an estimate
    _late: bool  # the router binds late: tasks wait in the shared queue
    _placer: Adaptive | None
    _max_speed: float  # the largest learned speed of any registered agent
    _prefetch: int
    _hold_slots: int  # slots' worth of tasks an agent may hold under late binding
    _tail: int  # shared queue length at or below which a burst's tail is placed at once
    _burst: bool  # the shared queue exceeded `_tail` and nothing arrived since
    _room: dict[str, None]  # agents that may have room for a shared task
    _holders: dict[str, None]  # agents that may hold late-bound queued tasks
    _active: int  # registered agents not draining
    _abandoned: list[Task]  # failed without running (park timeout)

    def _agent_or_none(self, agent_id: str) -> AgentState | None:
        try:
            return self.store.agent(agent_id)
        except KeyError:
            return None
