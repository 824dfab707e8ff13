"""In-level scheduling disciplines (fifo, edf, cfs, wfq) and the factory that names them."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from swarmbalancer.policies.disciplines.base import Discipline, KeyedDiscipline
from swarmbalancer.policies.disciplines.cfs import CompletelyFair
from swarmbalancer.policies.disciplines.edf import EarliestDeadlineFirst
from swarmbalancer.policies.disciplines.fifo import Fifo
from swarmbalancer.policies.disciplines.wfq import WeightedFairQueueing

__all__ = [
    "DISCIPLINES",
    "CompletelyFair",
    "Discipline",
    "EarliestDeadlineFirst",
    "Fifo",
    "KeyedDiscipline",
    "WeightedFairQueueing",
    "make_discipline",
]

#: Discipline names as configured (`BalancerConfig.discipline`) and how to build each.
_FACTORIES: Mapping[str, Callable[[Mapping[str, float]], Discipline]] = {
    "fifo": lambda _weights: Fifo(),
    "edf": lambda _weights: EarliestDeadlineFirst(),
    "cfs": CompletelyFair,
    "wfq": WeightedFairQueueing,
}

#: The known discipline names.
DISCIPLINES: tuple[str, ...] = tuple(_FACTORIES)


def make_discipline(name: str, tenant_weights: Mapping[str, float]) -> Discipline:
    """A fresh, empty discipline of the named kind; fifo and edf ignore `tenant_weights`.

    Raises ValueError, listing the known names, for an unknown `name`.
    """
    try:
        factory = _FACTORIES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"discipline: {name!r} is not one of {', '.join(DISCIPLINES)}") from None
    return factory(tenant_weights)
