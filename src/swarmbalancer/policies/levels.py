"""The per-agent multi-level queue: five priority levels, weighted sharing and aging.

CRITICAL, HIGH, NORMAL and LOW share dispatches by smooth weighted round robin (nginx SWRR) over
the levels that have tasks, so under saturation the shares converge to the weights and an empty
level's share goes to the others in proportion to theirs. BACKGROUND is served only when those four
are empty. Inside a level a `Discipline` (fifo, edf, cfs, wfq) picks the task.

Aging: a task that has waited `aging_interval` in its current level (below `aging_ceiling`) moves
up `aging_boost` levels, capped at the ceiling; its level-join time becomes the instant it aged
(join time + interval, not the time the aging is noticed), so it can age again one interval later.
Aging is applied lazily, in time order, at the start of `pop(now)`; it moves tasks between the
levels' structures and never changes a key inside a heap.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from types import MappingProxyType

from swarmbalancer.config import BalancerConfig
from swarmbalancer.model import WEIGHTED_LEVELS, Priority, Task
from swarmbalancer.policies.disciplines import Discipline, make_discipline
from swarmbalancer.policies.disciplines.heap import Key
from swarmbalancer.policies.disciplines.monotone import MonotoneQueue

_LEVELS: tuple[Priority, ...] = tuple(Priority)
_LEVEL_INDEXES = range(len(_LEVELS))
_WEIGHTED = len(WEIGHTED_LEVELS)
_BACKGROUND = int(Priority.BACKGROUND)
_NO_TENANT_WEIGHTS: Mapping[str, float] = MappingProxyType({})


class LevelQueue:
    """One agent's queue: a discipline per priority level, weighted sharing between levels, aging.

    Push and pop are O(log n) amortized; aging k tasks costs O(k log n); removing k tasks costs
    O(k log n) (O(n log n) with cfs, whose dispatch order must be simulated). The structure is
    pure: time is passed in as `now` and every tie is broken by `task.seq`. With cfs, every popped
    task must later be reported through `charge`, which also frees its bookkeeping.
    """

    def __init__(
        self,
        *,
        weights: tuple[float, float, float, float] = (40.0, 30.0, 20.0, 10.0),
        discipline: str = "fifo",
        tenant_weights: Mapping[str, float] = _NO_TENANT_WEIGHTS,
        aging_interval: float = 5.0,
        aging_boost: int = 1,
        aging_ceiling: Priority = Priority.HIGH,
    ) -> None:
        if len(weights) != _WEIGHTED or not all(w > 0 and math.isfinite(w) for w in weights):
            raise ValueError(f"weights: need 4 finite numbers > 0 (critical..low), got {weights!r}")
        if isinstance(aging_boost, bool) or not isinstance(aging_boost, int) or aging_boost < 0:
            raise ValueError(f"aging_boost: {aging_boost!r} is not a whole number >= 0")
        if aging_boost and not (aging_interval > 0 and math.isfinite(aging_interval)):
            raise ValueError(f"aging_interval: must be a finite number > 0, got {aging_interval!r}")
        self._weights = tuple(float(w) for w in weights)
        self._current = [0.0] * _WEIGHTED  # SWRR credit per weighted level
        self._levels: tuple[Discipline, ...] = tuple(
            make_discipline(discipline, tenant_weights) for _ in _LEVELS
        )
        self._uses_charge = self._levels[0].uses_charge
        self._interval = float(aging_interval)
        self._boost = aging_boost
        self._ceiling = int(Priority(aging_ceiling))
        self._aging = aging_boost > 0 and self._ceiling < _BACKGROUND
        # Per level below the ceiling: its tasks keyed by (time they joined the level, seq).
        self._joined: tuple[MonotoneQueue, ...] = tuple(MonotoneQueue() for _ in _LEVELS)
        self._due = math.inf  # lower bound of the next aging instant
        self._where: dict[str, int] = {}  # queued task id -> level
        self._counts = [0] * len(_LEVELS)  # queued tasks per level
        self._dispatched: dict[str, int] = {}  # popped, not yet charged (cfs only) -> level
        #: Were all four weighted levels non-empty at the last `pop` (so its share counted)?
        self.saturated = False

    @classmethod
    def from_config(cls, cfg: BalancerConfig) -> LevelQueue:
        """A queue with the weights, discipline and aging of `cfg`."""
        return cls(
            weights=cfg.level_weights.as_tuple(),
            discipline=cfg.discipline,
            tenant_weights=cfg.tenant_weights,
            aging_interval=cfg.aging_interval,
            aging_boost=cfg.aging_boost,
            aging_ceiling=Priority.parse(cfg.aging_ceiling, "aging_ceiling"),
        )

    @property
    def weights(self) -> tuple[float, ...]:
        """The SWRR weights of CRITICAL, HIGH, NORMAL and LOW."""
        return self._weights

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._where

    def level_len(self, level: Priority) -> int:
        """How many tasks are queued at `level` (as of the last aging step)."""
        return self._counts[level]

    def level_tasks(self, level: Priority) -> list[Task]:
        """A snapshot of the tasks queued at `level`, in dispatch order."""
        return self._levels[level].ordered()

    def push(self, task: Task, now: float) -> None:
        """Queue `task` at `task.level`; the caller sets `task.enqueued_at`, this does not."""
        if task.id in self._where:
            raise ValueError(f"task {task.id!r} is already queued")
        level = int(task.level)
        self._levels[level].push(task, now)
        self._where[task.id] = level
        self._counts[level] += 1
        if self._aging and level > self._ceiling:
            self._joined[level].push(now, task)
            if now + self._interval < self._due:
                self._due = now + self._interval

    def pop(self, now: float) -> Task | None:
        """Age tasks up to `now`, then dispatch from the level SWRR picks; None only when empty.

        The returned task's `level` is the level it was dispatched from.
        """
        if now >= self._due:
            self._age(now)
        level = self._pick()
        if level is None:
            return None
        task = self._levels[level].pop(now)
        assert task is not None  # _pick only names non-empty levels
        del self._where[task.id]
        self._counts[level] -= 1
        if self._aging and level > self._ceiling:
            self._joined[level].discard(task.id)
        task.level = _LEVELS[level]
        if self._uses_charge:
            self._dispatched[task.id] = level
        return task

    def remove(self, task_ids: Collection[str]) -> list[Task]:
        """Take out the queued tasks among `task_ids`, to steal or migrate them; others are ignored.

        They come back grouped by level, most urgent first, and in dispatch order within a level.
        """
        by_level: dict[int, list[str]] = {}
        for tid in dict.fromkeys(task_ids):
            level = self._where.get(tid)
            if level is not None:
                by_level.setdefault(level, []).append(tid)
        out: list[Task] = []
        for level in sorted(by_level):
            taken = self._levels[level].remove(by_level[level])
            self._counts[level] -= len(taken)
            for task in taken:
                del self._where[task.id]
                if self._aging and level > self._ceiling:
                    self._joined[level].discard(task.id)
            out.extend(taken)
        return out

    def charge(self, task: Task, actual_runtime: float) -> None:
        """Report how long a task popped from here ran, to the discipline of its level."""
        level = self._dispatched.pop(task.id, None)
        if level is not None:
            self._levels[level].charge(task, actual_runtime)

    def next_aging_at(self) -> float | None:
        """The earliest time a queued task will age, or None when aging is off or none can."""
        if not self._aging:
            return None
        head = self._oldest()
        self._due = math.inf if head is None else head[0][0] + self._interval
        return None if head is None else self._due

    def _pick(self) -> int | None:
        """Smooth weighted round robin over the non-empty weighted levels, else BACKGROUND."""
        counts, current, weights = self._counts, self._current, self._weights
        best, best_credit, total, busy = -1, -math.inf, 0.0, 0
        for i in range(_WEIGHTED):
            if counts[i]:
                weight = weights[i]
                credit = current[i] + weight
                current[i] = credit
                total += weight
                busy += 1
                if credit > best_credit:
                    best, best_credit = i, credit
        self.saturated = busy == _WEIGHTED
        if best >= 0:
            current[best] -= total
            return best
        return _BACKGROUND if counts[_BACKGROUND] else None

    def _oldest(self) -> tuple[Key, int, Task] | None:
        """The (join key, level, task) that joined its level first among all that can age."""
        best: tuple[Key, int, Task] | None = None
        for level in range(self._ceiling + 1, len(_LEVELS)):
            head = self._joined[level].peek()
            if head is not None and (best is None or head[0] < best[0]):
                best = (head[0], level, head[1])
        return best

    def _age(self, now: float) -> None:
        """Promote, in time order, every task whose wait in its level reached the interval."""
        interval, joined, lowest = self._interval, self._joined, self._ceiling + 1
        heads = [joined[level].peek() if level >= lowest else None for level in _LEVEL_INDEXES]
        while True:
            best, best_key = -1, None
            for level in range(lowest, len(_LEVELS)):
                head = heads[level]
                if head is not None and (best_key is None or head[0] < best_key):
                    best, best_key = level, head[0]
            if best_key is None:
                self._due = math.inf
                return
            aged_at = best_key[0] + interval
            if aged_at > now:
                self._due = aged_at
                return
            head = heads[best]
            assert head is not None
            target = self._promote(head[1], best, aged_at)
            heads[best] = joined[best].peek()
            if target >= lowest:
                heads[target] = joined[target].peek()

    def _promote(self, task: Task, level: int, aged_at: float) -> int:
        """Move `task` up from `level` by the boost, capped at the ceiling; return its new level."""
        self._joined[level].discard(task.id)
        self._levels[level].discard(task.id)
        target = max(self._ceiling, level - self._boost)
        task.level = _LEVELS[target]
        self._levels[target].push(task, aged_at)
        self._where[task.id] = target
        self._counts[level] -= 1
        self._counts[target] += 1
        if target > self._ceiling:
            self._joined[target].push(aged_at, task)
        return target
