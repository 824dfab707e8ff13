"""Rolling wall-clock timings of a live swarm: the coordinator's decision time (each dispatch and
timer tick the runtime runs) and a durable store's flush time.

Samples are `time.perf_counter` durations, kept for the last `WINDOW_S` seconds (at most
`MAX_SAMPLES`, the newest), so a snapshot reads what happens now, not an average since start.
Recording one is an append; the figures are computed only when read. The simulator has no
timings: its time is virtual.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from swarmbalancer.metrics.stats import percentile

#: How far back the figures look (seconds), and how many of the newest samples they keep.
WINDOW_S = 60.0
MAX_SAMPLES = 4096
#: The shortest span a busy share is taken over, so a single sample cannot read as 100% busy.
MIN_SPAN_S = 1.0


@dataclass(frozen=True, slots=True)
class TimerFigures:
    """What a `RollingTimer` saw in its window: `samples` timed calls that handled `items`
    (tasks dispatched, rows written), their duration percentiles, and `busy_share`: their summed
    time over the wall time the window spans (at least `MIN_SPAN_S`)."""

    samples: int
    items: int
    span_s: float
    busy_share: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    per_item_us: float | None  # summed time over items (null when none)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RollingTimer:
    """Durations of the newest calls of one kind; `since(start, items)` records one call."""

    __slots__ = ("_samples", "max_samples", "window_s")

    def __init__(self, *, max_samples: int = MAX_SAMPLES, window_s: float = WINDOW_S) -> None:
        self.max_samples = max_samples
        self.window_s = window_s
        self._samples: deque[tuple[float, float, int]] = deque(maxlen=max_samples)

    def since(self, start: float, items: int = 0) -> None:
        """Record a call that began at `start` (a `time.perf_counter()` reading) and ends now."""
        end = time.perf_counter()
        self._samples.append((end, end - start, items))

    def add(self, end: float, duration: float, items: int = 0) -> None:
        """Record a call of `duration` seconds that ended at `end` (perf_counter seconds)."""
        if not (math.isfinite(duration) and duration >= 0):
            raise ValueError(f"duration: must be a finite number >= 0, got {duration!r}")
        self._samples.append((end, duration, items))

    def figures(self, now: float | None = None) -> TimerFigures | None:
        """The window's figures at `now` (perf_counter seconds); None when it holds no sample."""
        now = time.perf_counter() if now is None else now
        cutoff = now - self.window_s
        samples = self._samples
        while samples and samples[0][0] < cutoff:
            samples.popleft()
        if not samples:
            return None
        durations = sorted(d for _, d, _ in samples)
        total = math.fsum(durations)
        items = sum(n for _, _, n in samples)
        first_end, first_duration, _ = samples[0]
        span = max(MIN_SPAN_S, now - first_end + first_duration)
        p50, p99 = percentile(durations, 50), percentile(durations, 99)
        assert p50 is not None and p99 is not None
        mean = min(max(total / len(durations), durations[0]), durations[-1])  # rounding aside
        return TimerFigures(
            samples=len(durations),
            items=items,
            span_s=span,
            busy_share=min(1.0, total / span),
            p50_ms=p50 * 1000.0,
            p99_ms=p99 * 1000.0,
            max_ms=durations[-1] * 1000.0,
            mean_ms=mean * 1000.0,
            per_item_us=total / items * 1e6 if items else None,
        )
