"""EDF admission control for periodic tasks on one processor, as pure functions.

`admit` picks the cheapest exact-or-sufficient test that applies:

* every relative deadline at least its period: Liu & Layland's utilization bound U = Σ C/T <= 1,
  which is exact for EDF (Liu & Layland 1973);
* some deadline shorter than its period: first the sufficient density test Σ C/min(D, T) <= 1,
  and if that fails the exact processor-demand test (Baruah, Rosier & Howell 1990): U <= 1 and
  dbf(t) = Σ max(0, floor((t - D_i) / T_i) + 1) * C_i <= t at every absolute deadline t up to
  L = min(synchronous busy period, max(D_max, Σ (T_i - D_i) U_i / (1 - U))) (the busy-period and
  Baruah/George bounds, which avoid the hyperperiod). At most `max_checkpoints` deadlines are
  checked; a set that would need more is rejected, to stay safe, with a reason saying so.

Comparisons allow a relative slack of 1e-9 so that rounding (0.1 + 0.2) never rejects a set that is
exactly schedulable, such as one with U = 1.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from swarmbalancer.errors import TaskRejected

EPS = 1e-9
DEFAULT_MAX_CHECKPOINTS = 100_000

AdmissionTest = Literal["liu-layland", "density", "demand-bound"]


@dataclass(frozen=True, slots=True)
class PeriodicTask:
    """A task releasing a job of `execution` time every `period`, due `deadline` after release.

    The relative deadline defaults to the period (an implicit deadline).
    """

    execution: float
    period: float
    deadline: float | None = None

    def __post_init__(self) -> None:
        _check("execution", self.execution, positive=False)
        _check("period", self.period, positive=True)
        if self.deadline is not None:
            _check("deadline", self.deadline, positive=True)

    @property
    def relative_deadline(self) -> float:
        """D: the deadline relative to each release."""
        return self.period if self.deadline is None else self.deadline

    @property
    def utilization(self) -> float:
        """C / T: the long-run share of the processor the task needs."""
        return self.execution / self.period

    @property
    def density(self) -> float:
        """C / min(D, T): the share it needs if every job must finish within min(D, T)."""
        return self.execution / min(self.relative_deadline, self.period)


@dataclass(frozen=True, slots=True)
class Admission:
    """The verdict on adding one task: which test decided, and a sentence saying why."""

    accepted: bool
    test: AdmissionTest
    utilization: float
    reason: str


def admit(
    existing: Sequence[PeriodicTask],
    new: PeriodicTask,
    *,
    max_checkpoints: int = DEFAULT_MAX_CHECKPOINTS,
) -> Admission:
    """Decide whether `existing` plus `new` stays schedulable under preemptive EDF."""
    tasks = [*existing, new]
    u = utilization(tasks)
    if all(t.relative_deadline >= t.period for t in tasks):
        if u <= 1 + EPS:
            return Admission(True, "liu-layland", u, f"utilization {u:.3g} <= 1.0: {_LL_NAME}")
        return Admission(
            False,
            "liu-layland",
            u,
            f"utilization {u:.3g} > 1.0: the task set is not schedulable under EDF ({_LL_NAME})",
        )
    density = sum(t.density for t in tasks)
    if density <= 1 + EPS:
        return Admission(
            True,
            "density",
            u,
            f"density {density:.3g} <= 1.0: schedulable under EDF (sufficient density test)",
        )
    if u > 1 + EPS:
        return Admission(
            False,
            "demand-bound",
            u,
            f"utilization {u:.3g} > 1.0: the task set is not schedulable under EDF "
            "(jobs need more processor time than exists in the long run)",
        )
    verdict = processor_demand_test(tasks, max_checkpoints=max_checkpoints)
    return Admission(verdict.schedulable, "demand-bound", u, verdict.reason)


_LL_NAME = "Liu & Layland bound, exact for EDF when every deadline is at least its period"


def utilization(tasks: Sequence[PeriodicTask]) -> float:
    """U = Σ C/T."""
    return math.fsum(t.utilization for t in tasks)


def demand_bound(tasks: Sequence[PeriodicTask], t: float) -> float:
    """dbf(t): execution of all jobs released at or after 0 and due at or before t (synchronous)."""
    total = 0.0
    for task in tasks:
        jobs = math.floor((t - task.relative_deadline) / task.period + EPS) + 1
        if jobs > 0:
            total += jobs * task.execution
    return total


@dataclass(frozen=True, slots=True)
class DemandVerdict:
    """Outcome of the processor-demand test and a sentence explaining it."""

    schedulable: bool
    reason: str
    checkpoints: int


def processor_demand_test(
    tasks: Sequence[PeriodicTask], *, max_checkpoints: int = DEFAULT_MAX_CHECKPOINTS
) -> DemandVerdict:
    """Baruah's exact EDF test: dbf(t) <= t at every absolute deadline t up to the bound L."""
    u = utilization(tasks)
    if u > 1 + EPS:
        return DemandVerdict(False, f"utilization {u:.3g} > 1.0: not schedulable under EDF", 0)
    bound = _checkpoint_bound(tasks, u, max_checkpoints)
    if bound is None:
        return DemandVerdict(False, _undecided(max_checkpoints), max_checkpoints)
    # Walk the absolute deadlines D_i + k T_i <= bound in increasing order, adding up demand.
    heap = [(t.relative_deadline, i) for i, t in enumerate(tasks) if t.relative_deadline <= bound]
    heapq.heapify(heap)
    demand, checked = 0.0, 0
    while heap:
        deadline, i = heapq.heappop(heap)
        task = tasks[i]
        demand += task.execution
        checked += 1
        if demand > deadline * (1 + EPS) + EPS:
            return DemandVerdict(
                False,
                f"processor demand {demand:.4g} > {deadline:.4g}: the jobs due by time "
                f"{deadline:.4g} need more processor time than there is, so the task set is not "
                "schedulable under EDF (exact processor-demand test)",
                checked,
            )
        if checked >= max_checkpoints:
            return DemandVerdict(False, _undecided(max_checkpoints), checked)
        following = deadline + task.period
        if following <= bound:
            heapq.heappush(heap, (following, i))
    return DemandVerdict(
        True,
        f"processor demand within capacity at all {checked} deadlines up to {bound:.4g}: "
        "schedulable under EDF (exact processor-demand test)",
        checked,
    )


def _checkpoint_bound(tasks: Sequence[PeriodicTask], u: float, max_iterations: int) -> float | None:
    """L: the lesser of the busy period and Baruah's bound, or None if neither is known."""
    bounds: list[float] = []
    if u < 1 - EPS:
        slack = math.fsum((t.period - t.relative_deadline) * t.utilization for t in tasks)
        bounds.append(max(max(t.relative_deadline for t in tasks), slack / (1 - u)))
    busy = _busy_period(tasks, max_iterations)
    if busy is not None:
        bounds.append(busy)
    return min(bounds) if bounds else None


def _busy_period(tasks: Sequence[PeriodicTask], max_iterations: int) -> float | None:
    """The first idle instant after a synchronous release: least w = Σ ceil(w / T_i) C_i."""
    w = math.fsum(t.execution for t in tasks)
    for _ in range(max_iterations):
        following = math.fsum(math.ceil(w / t.period - EPS) * t.execution for t in tasks)
        if following <= w * (1 + EPS):
            return w
        w = following
    return None


def _undecided(max_checkpoints: int) -> str:
    return (
        f"deciding schedulability would take more than {max_checkpoints} processor-demand "
        "checkpoints, so the task is refused to stay safe (exact processor-demand test)"
    )


def _check(name: str, value: object, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TaskRejected(f"{name}: {value!r} is not a finite number")
    if positive and value <= 0:
        raise TaskRejected(f"{name}: must be > 0, got {value!r}")
    if value < 0:
        raise TaskRejected(f"{name}: must be >= 0, got {value!r}")
