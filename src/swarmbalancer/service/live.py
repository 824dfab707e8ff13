"""The dashboard's live frames: one compact JSON object per interval, built from the snapshot
the insight routes read (report, agents, timings, diagnosis) and from the histograms `/metrics`
serves, never from figures of its own.

Every open stream shares one frame per interval: a frame is built at most once per `interval`
seconds whoever asks, and never more often than keeps its building under `DUTY` of the event
loop's time (building reads the whole report, whose percentiles cost more on a long run).
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import Histogram

from swarmbalancer.metrics.diagnosis import diagnose
from swarmbalancer.metrics.recorder import strict_json
from swarmbalancer.service.metrics import BUCKETS

if TYPE_CHECKING:
    from swarmbalancer.service.core import Service

#: Seconds between frames, and the span the windowed rates and latencies cover.
INTERVAL_S = 0.5
WINDOW_S = 5.0
#: Frames take at most this share of the loop: the interval stretches to cost / DUTY.
DUTY = 0.05
#: Chart points kept for a dashboard that connects later (two minutes at the default interval).
HISTORY = 240
#: Findings a frame carries (the most severe).
TOP_FINDINGS = 5


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: its number, when it was built (monotonic seconds) and its JSON text."""

    seq: int
    built_at: float
    text: str


def bucket_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """The q-quantile (0..1) of a histogram given its upper bounds (the last +Inf) and its
    cumulative counts, interpolated linearly inside the bucket that holds it, as Prometheus'
    `histogram_quantile` does (in the +Inf bucket: the highest finite bound); None when empty."""
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return None
    rank = q * total
    below, lower = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank and count > below:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        below, lower = count, bound
    return lower


#: The upper bounds of the service's latency histograms, +Inf last.
BOUNDS = (*BUCKETS, math.inf)


def summed_buckets(histogram: Histogram) -> list[float]:
    """A labelled histogram's cumulative bucket counts (one per bound of `BOUNDS`), summed over
    every label set: the figures `/metrics` exposes, added up."""
    sums = dict.fromkeys(BOUNDS, 0.0)
    for metric in histogram.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                sums[float(sample.labels["le"])] += sample.value
    return list(sums.values())


@dataclass(frozen=True, slots=True)
class _Mark:
    """The cumulative figures at one frame, to take differences over the window."""

    at: float
    completed: int
    failed: int
    buckets: list[float]


class LiveFeed:
    """Builds the service's frames on demand and keeps the chart's recent points."""

    def __init__(
        self, service: Service, *, interval: float = INTERVAL_S, window: float = WINDOW_S
    ) -> None:
        self.service = service
        self.interval = interval
        self.window = window
        self._frame: Frame | None = None
        self._cost = 0.0
        self._marks: deque[_Mark] = deque()
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.streams = 0  # event streams open now

    @property
    def period(self) -> float:
        """Seconds a frame stays current: the interval, or longer when frames are costly."""
        return max(self.interval, self._cost / DUTY)

    def frame(self) -> Frame:
        """The current frame, built anew when the last one is a period old."""
        now = time.monotonic()
        last = self._frame
        if last is not None and now - last.built_at < self.period * 0.9:
            return last
        started = time.perf_counter()
        data = self._build(now)
        text = json.dumps(strict_json(data), separators=(",", ":"), allow_nan=False)
        self._cost = time.perf_counter() - started
        self._frame = Frame(0 if last is None else last.seq + 1, now, text)
        return self._frame

    def _build(self, now: float) -> dict[str, Any]:
        service = self.service
        snapshot = service.snapshot()
        report = snapshot.report
        buckets = summed_buckets(service.metrics.sojourn)
        window = self._window(_Mark(now, report["completed"], report["failed"], buckets))
        point = {"t": time.time(), **window}
        self.history.append(point)
        usage = (report["token_usage"] or {}).get("per_agent", {})
        return {
            "time": point["t"],
            "strategy": service.balancer.config.strategy,
            "period_s": self.period,
            "totals": {
                key: report[key]
                for key in (
                    "accepted",
                    "completed",
                    "failed",
                    "cancelled",
                    "open",
                    "retries",
                    "steals",
                    "migrations",
                    "deadline_misses",
                )
            },
            "queues": {"shared": snapshot.shared_queued, "agents": snapshot.agent_queued},
            "run": {
                key: report[key]
                for key in (
                    "throughput_per_s",
                    "sojourn_ms",
                    "queue_latency_ms",
                    "utilization",
                    "jain_fairness",
                )
            },
            "window": window,
            "agents": [
                {
                    "id": a.id,
                    "capacity": a.capacity,
                    "in_flight": a.in_flight,
                    "queued": a.queued,
                    "completed": a.completed,
                    "failed": a.failed,
                    "breaker": a.breaker,
                    "speed": a.speed,
                    "error_rate": a.error_rate,
                    "utilization": a.utilization,
                    "draining": a.draining,
                    "tokens": _tokens(usage.get(a.id)),
                }
                for a in snapshot.agents
            ],
            "tokens": _token_view(report["token_usage"]),
            "timing": {
                "decision": None if snapshot.decision is None else snapshot.decision.to_dict(),
                "flush": None if snapshot.flush is None else snapshot.flush.to_dict(),
            },
            "findings": [
                {
                    "kind": f.kind,
                    "severity": f.severity,
                    "subject": f.subject,
                    "summary": f.summary,
                    "suggestion": f.suggestion,
                }
                for f in diagnose(snapshot)[:TOP_FINDINGS]
            ],
        }

    def _window(self, mark: _Mark) -> dict[str, Any]:
        """Rates and sojourn percentiles over the last `window` seconds: differences of the
        report's counters and of the sojourn histogram's buckets since the oldest mark kept."""
        marks = self._marks
        marks.append(mark)
        while len(marks) > 2 and marks[1].at <= mark.at - self.window:
            marks.popleft()
        first = marks[0]
        span = mark.at - first.at
        if span <= 0:
            return {
                "seconds": None,
                "completed_per_s": None,
                "failed_per_s": None,
                "sojourn_ms": None,
            }
        delta = [b - a for a, b in zip(first.buckets, mark.buckets, strict=True)]
        quantiles = {
            f"p{round(q * 100)}": bucket_quantile(q, BOUNDS, delta) for q in (0.5, 0.95, 0.99)
        }
        return {
            "seconds": span,
            "completed_per_s": (mark.completed - first.completed) / span,
            "failed_per_s": (mark.failed - first.failed) / span,
            "sojourn_ms": {k: None if v is None else v * 1000.0 for k, v in quantiles.items()},
        }


def _tokens(row: dict[str, Any] | None) -> int | None:
    return None if row is None else int(row["input_tokens"]) + int(row["output_tokens"])


def _token_view(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """The report's token usage without the per-agent rows (each agent's row has its own)."""
    if usage is None:
        return None
    return {key: value for key, value in usage.items() if key != "per_agent"}
