"""The per-agent multi-level queue: five priority levels, weighted sharing and FIFO-true aging.

Tasks are kept by *class*, the level they were queued at, each class in the order of its own
`Discipline` (fifo, edf, cfs, wfq). A task's *effective level* starts at its class and rises with
aging; a class is dispatched at the most urgent effective level among its tasks. CRITICAL, HIGH,
NORMAL and LOW share dispatches by smooth weighted round robin (nginx SWRR) over the effective
levels that hold a class, so under saturation the shares converge to the weights and an empty
level's share goes to the others in proportion to theirs. BACKGROUND is served only when those
four are empty. Between classes at one effective level, the one whose head task is older goes.

Aging: a task that has waited `aging_interval` at its effective level (below `aging_ceiling`) rises
`aging_boost` levels, capped at the ceiling; the step is timed from the previous one (join time +
interval, not the time it is noticed), so it can rise again one interval later. Aging is applied
lazily, in time order, when `pop` or `peek` is called. It never moves a task inside or between the
disciplines' orders: it only raises the level a class is served at. So a class always goes out in
its own order (with fifo: no task overtakes an older one of its class), and a turn taken above a
class's own level (one aging earned) goes to the oldest head among that class and every more
urgent class, so aging never puts a task ahead of an older task of its own or a higher class.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from itertools import islice
from types import MappingProxyType

from swarmbalancer.config import BalancerConfig
from swarmbalancer.model import WEIGHTED_LEVELS, Priority, Task
from swarmbalancer.policies.disciplines import Discipline, make_discipline
from swarmbalancer.policies.disciplines.monotone import MonotoneQueue

_LEVELS: tuple[Priority, ...] = tuple(Priority)
_N = len(_LEVELS)
_WEIGHTED = len(WEIGHTED_LEVELS)
_BACKGROUND = int(Priority.BACKGROUND)
_EMPTY = _N  # the effective level of a class with no queued task
_NO_TENANT_WEIGHTS: Mapping[str, float] = MappingProxyType({})
# A cell is a (class, effective level) pair, indexed class * _N + level.
_OWN_CELL = tuple(c * _N + c for c in range(_N))  # the cell of a class at its own level
_CELL_LEVEL = tuple(cell % _N for cell in range(_N * _N))


def _age_key(task: Task) -> tuple[float, int]:
    """Older first: the time the task entered an agent's queue, then submission order."""
    return (task.enqueued_at, task.seq)


class LevelQueue:
    """One agent's queue: a discipline per class, weighted sharing between levels, aging.

    Push and pop are O(log n) amortized (O(1) with fifo when times arrive in order); aging k tasks
    costs O(k log n); removing k tasks costs O(k log n) (O(n log n) with cfs, whose dispatch order
    must be simulated). The structure is pure: time is passed in as `now` and every tie is broken
    by `task.seq`. With cfs, every popped task must later be reported through `charge`, which
    also frees its bookkeeping.
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
        self._classes: tuple[Discipline, ...] = tuple(
            make_discipline(discipline, tenant_weights) for _ in _LEVELS
        )
        self._uses_charge = self._classes[0].uses_charge
        self._interval = float(aging_interval)
        self._boost = aging_boost
        self._ceiling = int(Priority(aging_ceiling))
        self._aging = aging_boost > 0 and self._ceiling < _BACKGROUND
        self._cells = [0] * (_N * _N)  # queued tasks per cell
        # Per effective level below the ceiling: its tasks keyed by (time they reached it, seq).
        self._joined: tuple[MonotoneQueue, ...] = tuple(MonotoneQueue() for _ in _LEVELS)
        self._due = math.inf  # lower bound of the next aging instant
        self._where: dict[str, int] = {}  # queued task id -> its cell
        self._class_level = [_EMPTY] * _N  # per class: its most urgent effective level
        self._members = [0] * _N  # per effective level: bit mask of the classes served there
        self._dispatched: dict[str, int] = {}  # popped, not yet charged (cfs only) -> class
        #: Were all four weighted levels busy at the last `pop` (so its share counted)?
        self.saturated = False
        # The fast lane: while every queued task is of one class and arrived in fifo order, they
        # wait here in that order and the structures above stay empty; any other use spills them
        # there first (`_spill`), so the lane is only a cheaper way to the same order.
        # tasks in age order, each pushed at its own `enqueued_at` (a push at another time skips
        # the lane), and their ids
        self._lane: deque[Task] = deque()
        self._lane_ids: set[str] = set()
        self._lane_class = _EMPTY
        self._lane_ok = discipline == "fifo"
        self._lane_seen = -math.inf  # the latest `now` a lane pop or peek saw (aging's horizon)
        # the age key (enqueued_at, seq) of the newest task pushed into the lane since it was
        # last empty: at least that of every task it holds, so a newer task may append
        self._lane_last_at = -math.inf
        self._lane_last_seq = -1

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
        return len(self._where) + len(self._lane)

    def __bool__(self) -> bool:
        return bool(self._lane or self._where)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._where or task_id in self._lane_ids

    def level_len(self, level: Priority) -> int:
        """How many tasks are queued at effective level `level` (as of the last aging step)."""
        if self._lane:
            self._spill()
        cells = self._cells
        return sum(cells[c * _N + level] for c in range(level, _N))

    def level_tasks(self, level: Priority) -> list[Task]:
        """A snapshot of the tasks at effective level `level`, in dispatch order."""
        if self._lane:
            self._spill()
        at = int(level)
        lists: list[list[Task]] = []
        for c in range(at, _N):  # aging only raises: a task's class is at or below its level
            here = self._cells[c * _N + at]
            if not here:
                continue
            ordered = self._classes[c].ordered()
            if here != len(ordered):
                where = self._where
                ordered = [t for t in ordered if _CELL_LEVEL[where[t.id]] == at]
            lists.append(ordered)
        return _merge(lists)

    def push(self, task: Task, now: float) -> None:
        """Queue `task` in class `task.level`; the caller sets `task.enqueued_at`, this does not."""
        task_id = task.id
        c = int(task.level)
        lane = self._lane
        if lane:
            if task_id in self._lane_ids:
                raise ValueError(f"task {task_id!r} is already queued")
            # the lane stays in age order: a task may join it only after every task it held
            at, seq, last_at = task.enqueued_at, task.seq, self._lane_last_at
            if (
                c == self._lane_class
                and at == now
                and (at > last_at or (at == last_at and seq > self._lane_last_seq))
            ):
                lane.append(task)
                self._lane_ids.add(task_id)
                self._lane_last_at, self._lane_last_seq = at, seq
                return
            self._spill()
        elif not self._where and self._lane_ok and task.enqueued_at == now:
            lane.append(task)
            self._lane_ids.add(task_id)
            self._lane_class = c
            self._lane_last_at, self._lane_last_seq = task.enqueued_at, task.seq
            return
        self._push_full(task, now)

    def _push_full(self, task: Task, now: float) -> None:
        """`push` into the full structures (classes, cells, aging), past the lane."""
        task_id = task.id
        c = int(task.level)
        if task_id in self._where:
            raise ValueError(f"task {task_id!r} is already queued")
        self._classes[c].push(task, now)
        cell = self._where[task_id] = _OWN_CELL[c]
        self._cells[cell] += 1
        if self._class_level[c] == _EMPTY:
            self._class_level[c] = c
            self._members[c] |= 1 << c
        if self._aging and c > self._ceiling:
            self._joined[c].push(now, task)
            if now + self._interval < self._due:
                self._due = now + self._interval

    def head(self, count: int) -> list[Task]:
        """Up to `count` queued tasks, the next to leave first (strictly so on the fast lane;
        otherwise level by level, each in dispatch order), without taking or aging any: what a
        remote agent is handed ahead of its free slots (cluster/prefetch.py)."""
        if self._lane:
            return list(islice(self._lane, count))
        out: list[Task] = []
        for level in _LEVELS:
            if len(out) >= count:
                break
            out.extend(self.level_tasks(Priority(level))[: count - len(out)])
        return out

    def peek(self, now: float) -> Task | None:
        """The task `pop(now)` would return, without taking it or changing the SWRR credits.

        Aging up to `now` may be applied; a `pop(now)` right after returns this very task.
        """
        if self._lane:
            self._lane_seen = max(self._lane_seen, now)
            return self._lane[0]
        if now >= self._due:
            self._age(now)
        level = self._turn()
        if level < 0:
            return None
        return self._classes[self._serve(level, now)].peek(now)

    def pop(self, now: float) -> Task | None:
        """Age tasks up to `now`, then dispatch from the level SWRR picks; None only when empty.

        The returned task's `level` is the effective level it was dispatched from.
        """
        if not self._where:
            if self._lane:
                return self._pop_lane(now)
            return None
        if now >= self._due:
            self._age(now)
        members, current, weights = self._members, self._current, self._weights
        level, best_credit, total, busy = -1, -math.inf, 0.0, 0
        for i in range(_WEIGHTED):
            if members[i]:
                weight = weights[i]
                credit = current[i] + weight
                current[i] = credit
                total += weight
                busy += 1
                if credit > best_credit:
                    level, best_credit = i, credit
        self.saturated = busy == _WEIGHTED
        if level >= 0:
            current[level] -= total
        elif members[_BACKGROUND]:
            level = _BACKGROUND
        else:
            return None
        c = level if members[level] == 1 << level else self._serve(level, now)
        class_level = self._class_level[c]  # above `level` only when the turn was lent
        task = self._classes[c].pop(now)
        assert task is not None  # _serve only names non-empty classes
        task_id = task.id
        cell = self._where.pop(task_id)
        at = _CELL_LEVEL[cell]
        left = self._cells[cell] - 1
        self._cells[cell] = left
        if at > self._ceiling and self._aging:
            self._joined[at].discard(task_id)
        if not left and at == class_level:
            if at == c:  # nothing can wait below a class's own level: it is empty now
                members[c] &= ~(1 << c)
                self._class_level[c] = _EMPTY
            else:
                self._settle(c)
        task.level = _LEVELS[level if class_level > level else class_level]
        if self._uses_charge:
            self._dispatched[task.id] = c
        return task

    def remove(self, task_ids: Collection[str]) -> list[Task]:
        """Take out the queued tasks among `task_ids`, to steal or migrate them; others are ignored.

        They come back grouped by effective level, most urgent first, and in dispatch order within
        a level; each keeps its effective level as `task.level`.
        """
        if self._lane:
            self._spill()
        by_class: dict[int, list[str]] = {}
        for tid in dict.fromkeys(task_ids):
            cell = self._where.get(tid)
            if cell is not None:
                by_class.setdefault(cell // _N, []).append(tid)
        by_level: dict[int, list[list[Task]]] = {}
        for c, ids in by_class.items():
            runs: dict[int, list[Task]] = {}
            for task in self._classes[c].remove(ids):
                cell = self._where.pop(task.id)
                level = _CELL_LEVEL[cell]
                self._forget(task, cell)
                task.level = _LEVELS[level]
                runs.setdefault(level, []).append(task)
            for level, run in runs.items():
                by_level.setdefault(level, []).append(run)
        out: list[Task] = []
        for level in sorted(by_level):
            out.extend(_merge(by_level[level]))
        return out

    def charge(self, task: Task, actual_runtime: float) -> None:
        """Report how long a task popped from here ran, to the discipline of its class."""
        c = self._dispatched.pop(task.id, None)
        if c is not None:
            self._classes[c].charge(task, actual_runtime)

    def next_aging_at(self) -> float | None:
        """The earliest time a queued task will age, or None when aging is off or none can."""
        if not self._aging:
            return None
        if self._lane:
            self._spill()
        first = math.inf
        for level in range(self._ceiling + 1, _N):
            head = self._joined[level].peek()
            if head is not None and head[0][0] < first:
                first = head[0][0]
        self._due = first + self._interval
        return None if first == math.inf else self._due

    # -- internals --------------------------------------------------------------------------------

    def _pop_lane(self, now: float) -> Task:
        """The lane's oldest task, at the level aging would have raised it to by `now`."""
        task = self._lane.popleft()
        self._lane_ids.discard(task.id)
        pushed = task.enqueued_at
        if now > self._lane_seen:
            self._lane_seen = now
        c = self._lane_class
        level = c
        if self._aging:
            # step by step, with the full queue's arithmetic (join time + interval, compared
            # with `now`), so a boundary falls the same way in floating point
            interval, ceiling, aged_at = self._interval, self._ceiling, pushed + self._interval
            while level > ceiling and aged_at <= now:
                level = max(ceiling, level - self._boost)
                aged_at += interval
        task.level = _LEVELS[level]
        self.saturated = False
        return task

    def _spill(self) -> None:
        """Move the lane's tasks into the full structures, each pushed as at its arrival and aged
        as far as the full queue would have aged it by the last pop or peek."""
        lane = list(self._lane)
        self._lane.clear()
        self._lane_ids.clear()
        for task in lane:
            self._push_full(task, task.enqueued_at)
        if self._lane_seen >= self._due:
            self._age(self._lane_seen)

    def _turn(self) -> int:
        """The level `pop` would serve (SWRR without spending credit), or -1 when empty."""
        members, current, weights = self._members, self._current, self._weights
        level, best_credit = -1, -math.inf
        for i in range(_WEIGHTED):
            if members[i]:
                credit = current[i] + weights[i]
                if credit > best_credit:
                    level, best_credit = i, credit
        if level < 0 and members[_BACKGROUND]:
            return _BACKGROUND
        return level

    def _serve(self, level: int, now: float) -> int:
        """The class whose head takes `level`'s turn.

        Among the classes served at `level`, the oldest head goes. A class served above its own
        level (by aging) yields the turn to an older head of itself or of a more urgent class.
        """
        mask = self._members[level]
        c = mask.bit_length() - 1
        if mask & (mask - 1):
            c = self._oldest(mask, now)
        if c > level:
            waiting = 0
            for other in self._members:
                waiting |= other
            if waiting & ((1 << c) - 1):
                c = self._oldest(waiting & ((2 << c) - 1), now)
        return c

    def _oldest(self, mask: int, now: float) -> int:
        """The class in `mask` whose head task is oldest (ties cannot happen: seq is unique)."""
        best, best_at, best_seq = -1, math.inf, -1
        classes = self._classes
        while mask:
            c = (mask & -mask).bit_length() - 1
            mask &= mask - 1
            head = classes[c].peek(now)
            assert head is not None  # only non-empty classes are in a mask
            at = head.enqueued_at
            if best < 0 or at < best_at or (at == best_at and head.seq < best_seq):
                best, best_at, best_seq = c, at, head.seq
        return best

    def _forget(self, task: Task, cell: int) -> None:
        """Drop the bookkeeping of a task that left `cell` (its class is already rid of it)."""
        c, level = divmod(cell, _N)
        left = self._cells[cell] - 1
        self._cells[cell] = left
        if self._aging and level > self._ceiling:
            self._joined[level].discard(task.id)
        if not left and level == self._class_level[c]:
            self._settle(c)

    def _settle(self, c: int) -> None:
        """Recompute class `c`'s level after its most urgent cell emptied."""
        old = self._class_level[c]
        self._members[old] &= ~(1 << c)
        cells, base, new = self._cells, c * _N, _EMPTY
        for lvl in range(old + 1, c + 1):
            if cells[base + lvl]:
                new = lvl
                break
        self._class_level[c] = new
        if new != _EMPTY:
            self._members[new] |= 1 << c

    def _age(self, now: float) -> None:
        """Raise, in time order, every task whose wait at its level reached the interval."""
        interval, joined, lowest = self._interval, self._joined, self._ceiling + 1
        heads = [joined[level].peek() if level >= lowest else None for level in range(_N)]
        while True:
            best, best_key = -1, None
            for level in range(lowest, _N):
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
        """Raise `task` from `level` by the boost, capped at the ceiling; return its new level."""
        self._joined[level].discard(task.id)
        target = max(self._ceiling, level - self._boost)
        cell = self._where[task.id]
        c = cell // _N
        self._where[task.id] = new_cell = c * _N + target
        self._cells[cell] -= 1
        self._cells[new_cell] += 1
        task.level = _LEVELS[target]
        old = self._class_level[c]
        if target < old:
            self._members[old] &= ~(1 << c)
            self._class_level[c] = target
            self._members[target] |= 1 << c
        if target > self._ceiling:
            self._joined[target].push(aged_at, task)
        return target


def _merge(lists: list[list[Task]]) -> list[Task]:
    """Interleave per-class dispatch orders, oldest head first, keeping each list's own order."""
    if len(lists) == 1:
        return lists[0]
    merged: Iterable[Task] = heapq.merge(*lists, key=_age_key)
    return list(merged)
