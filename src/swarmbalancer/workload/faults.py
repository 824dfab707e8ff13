"""Fault injection over time: the faults in force on an agent at an instant, as one effect.

Overlapping faults combine as: the highest error rate, the product of slowdowns, down if any is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from swarmbalancer.workload.schema import Fault, Workload


@dataclass(slots=True, frozen=True)
class FaultEffect:
    """What faults do to an attempt that starts now: fail with `error_rate`, run `slowdown`
    times longer, or, when `down`, fail at once."""

    error_rate: float = 0.0
    slowdown: float = 1.0
    down: bool = False

    @property
    def healthy(self) -> bool:
        """True when no fault applies."""
        return self.error_rate == 0.0 and self.slowdown == 1.0 and not self.down


#: The effect when no fault applies.
NO_FAULT = FaultEffect()


class FaultPlan:
    """The faults of a workload, indexed by agent for quick lookup at any instant."""

    __slots__ = ("_by_agent",)

    def __init__(self, faults: Iterable[Fault]) -> None:
        self._by_agent: dict[str, list[Fault]] = {}
        for fault in faults:
            self._by_agent.setdefault(fault.agent, []).append(fault)

    @classmethod
    def from_workload(cls, workload: Workload) -> FaultPlan:
        """The plan of `workload.faults`."""
        return cls(workload.faults)

    def at(self, agent_id: str, t: float) -> FaultEffect:
        """The combined effect on `agent_id` at workload time `t` (windows are `[from, until)`)."""
        faults = self._by_agent.get(agent_id)
        if not faults:
            return NO_FAULT
        active = [f for f in faults if f.active(t)]
        if not active:
            return NO_FAULT
        slowdown = 1.0
        for fault in active:
            slowdown *= fault.slowdown
        return FaultEffect(
            error_rate=max(f.error_rate for f in active),
            slowdown=slowdown,
            down=any(f.down for f in active),
        )

    def boundaries(self) -> list[float]:
        """Every instant at which some agent's effect may change, sorted (for event schedulers)."""
        times: set[float] = set()
        for faults in self._by_agent.values():
            for fault in faults:
                times.add(fault.start)
                if fault.until is not None:
                    times.add(fault.until)
        return sorted(times)

    def __bool__(self) -> bool:
        return bool(self._by_agent)
