"""An arrival-aware lower bound on the makespan, streamed over arrivals in time order.

For tasks j arriving at a_j (relative to the first arrival) with work w_j, on agents of speeds s_i
and capacities c_i, no schedule finishes before

    max( max_j (a_j + w_j / v),  max_t (t + W(>= t) / S) ),   v = max_i s_i,  S = sum_i s_i c_i,

where t ranges over the arrival instants and W(>= t) is the work arriving at or after t: a task
cannot finish before it arrives plus its run on the fastest agent, and the work arriving from t on
cannot be done before t plus that work at the swarm's full rate. Speeds are only known at the end
(agents may join later, reference speeds may be set late), so both maxima are kept as functions of
u = 1/v and u = 1/S: each is max_k (x_k + u y_k) over points with x_k non-decreasing, attained on
the points' upper convex hull, which a monotone chain keeps in O(1) amortized per point. The
second term is max_k (t_k - u P_k) + u W, P_k being the work that arrived before t_k.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import accumulate


class UpperHull:
    """The upper convex hull of points added with non-decreasing x; `best(u)` = max x + u·y."""

    __slots__ = ("_xs", "_ys")

    def __init__(self) -> None:
        self._xs: list[float] = []
        self._ys: list[float] = []

    def __len__(self) -> int:
        return len(self._xs)

    def add(self, x: float, y: float) -> None:
        """Add (x, y); x must be >= every x added before (a smaller one is raised to the last)."""
        self.extend((x,), (y,))

    def extend(self, xs: Iterable[float], ys: Iterable[float]) -> None:
        """Add the points (xs[k], ys[k]) in order: the monotone chain, one step per point."""
        hx, hy = self._xs, self._ys
        n = len(hx)
        for x, y in zip(xs, ys, strict=True):
            if n and x <= hx[-1]:
                x = hx[-1]
                if hy[-1] >= y:
                    continue  # below a point at the same x: never the maximum for any u >= 0
                hx.pop()
                hy.pop()
                n -= 1
            if n >= 2:  # drop the last point while it lies on or under the chord to (x, y)
                x2, y2 = hx[-1], hy[-1]
                while True:
                    x1, y1 = hx[n - 2], hy[n - 2]
                    if (x2 - x1) * (y - y1) < (y2 - y1) * (x - x1):
                        break
                    hx.pop()
                    hy.pop()
                    n -= 1
                    if n < 2:
                        break
                    x2, y2 = x1, y1
            hx.append(x)
            hy.append(y)
            n += 1

    def best(self, u: float) -> float:
        """max over the points of x + u·y (u >= 0); -inf when there are none."""
        return max((x + u * y for x, y in zip(self._xs, self._ys, strict=True)), default=-math.inf)


class MakespanBound:
    """Collects (arrival, work) in arrival order; `bound(S, v)` is the lower bound above.

    Tasks are buffered and folded into the hulls `_BATCH` at a time, which costs less per task
    than one hull step per call.
    """

    __slots__ = ("_instants", "_pending", "_tasks", "_work")

    def __init__(self) -> None:
        self._tasks = UpperHull()  # (a_j, w_j)
        self._instants = UpperHull()  # (a_j, -P_j): P_j the work that arrived before task j
        self._work = 0.0  # the work folded in so far
        self._pending: list[float] = []  # a, w, a, w, ... not folded in yet

    def __len__(self) -> int:
        """Points kept (the memory the bound costs), not tasks seen."""
        self._fold()
        return len(self._tasks) + len(self._instants)

    def add(self, arrival: float, work: float) -> None:
        """One task that arrived at `arrival` (non-decreasing from call to call) with `work`."""
        pending = self._pending
        pending.append(arrival)
        pending.append(work)
        if len(pending) >= _BATCH:
            self._fold()

    def bound(self, throughput: float, fastest: float) -> float:
        """The bound for total rate `throughput` (S) and top speed `fastest` (v); 0.0 if empty."""
        self._fold()
        if not self._tasks:
            return 0.0
        per_task = self._tasks.best(1.0 / fastest)
        swarm = self._instants.best(1.0 / throughput) + self._work / throughput
        return max(per_task, swarm)

    def _fold(self) -> None:
        pending = self._pending
        if not pending:
            return
        arrivals, works = pending[0::2], pending[1::2]
        before = list(accumulate(works, initial=self._work))  # P_j, then the new total
        self._work = before.pop()
        self._tasks.extend(arrivals, works)
        self._instants.extend(arrivals, [-p for p in before])
        pending.clear()


_BATCH = 2 * 1024  # floats in the buffer: 1,024 tasks
