"""Bottleneck diagnosis: from a `Snapshot` of a live swarm, ranked findings, each with the
figures it rests on and a setting to try. Pure: it reads the snapshot and nothing else.

Thresholds are deliberately coarse (a finding should be obvious in the figures it cites); they
are documented in docs/metrics.md.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from swarmbalancer.errors import ConfigError
from swarmbalancer.metrics.snapshot import AgentFigures, Snapshot
from swarmbalancer.metrics.timing import TimerFigures

#: What `component` may name: the seed's names; `all` and `load-balancer` mean every check.
Component = Literal["all", "load-balancer", "agents", "task-queue", "swarm-coordination"]
COMPONENTS: tuple[str, ...] = get_args(Component)
#: An agent is failing at this learned error rate (with `MIN_SAMPLES` outcomes behind it).
FAILING_ERROR_RATE = 0.25
MIN_SAMPLES = 5
#: An agent is slow below this fraction of its speed hint, of its own speed over the run (it
#: slowed down), or of its peers' median speed.
SLOW_VS_HINT = 0.5
SLOW_VS_OWN = 0.6
SLOW_VS_PEERS = 0.5
#: The queue grows when tasks arrive this much faster than they end.
GROWTH_RATIO = 1.1
#: Aging pressure: a low level's queue latency p99 above this many aging intervals.
AGING_FACTOR = 2.0
#: Imbalance: Jain's index of utilizations below this while agents hold queues.
UNEVEN_JAIN = 0.8
#: Coordinator decision time: its dispatches and timer ticks take this share of the wall time,
#: or their p99 holds the event loop this long (over at least `MIN_TIMED` timed calls).
DECISION_BUSY_SHARE = 0.5
DECISION_P99_MS = 50.0
#: Store latency: a durable store's flushes (those that wrote rows) have a p99 above this, or
#: take this share of the wall time.
FLUSH_P99_MS = 50.0
FLUSH_BUSY_SHARE = 0.3
MIN_TIMED = 20


@dataclass(frozen=True, slots=True)
class Finding:
    """One bottleneck: `severity` in [0, 1] ranks it; `evidence` holds the figures."""

    kind: str
    component: str
    severity: float
    subject: str | None
    summary: str
    evidence: dict[str, Any]
    suggestion: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_component(component: str) -> str:
    if component not in COMPONENTS:
        raise ConfigError(f"component: {component!r} is not one of {', '.join(COMPONENTS)}")
    return component


def diagnose(snapshot: Snapshot, component: str = "all") -> list[Finding]:
    """The findings for `component`, most severe first (ties by kind, then subject)."""
    check_component(component)
    findings = [
        *_failing(snapshot.agents),
        *_slow(snapshot.agents),
        *_saturated(snapshot),
        *_queue_growth(snapshot),
        *_aging(snapshot),
        *_uneven(snapshot),
        *_decision_time(snapshot.decision),
        *_store_latency(snapshot.flush),
    ]
    if component not in ("all", "load-balancer"):
        findings = [f for f in findings if f.component == component]
    return sorted(findings, key=lambda f: (-f.severity, f.kind, f.subject or ""))


def _failing(agents: list[AgentFigures]) -> list[Finding]:
    out = []
    for a in agents:
        tripped = a.breaker in ("open", "half_open")
        erring = a.samples >= MIN_SAMPLES and a.error_rate >= FAILING_ERROR_RATE
        if not (tripped or erring):
            continue
        attempts = a.completed + a.failed
        out.append(
            Finding(
                kind="failing-agent",
                component="agents",
                severity=max(a.error_rate, 0.9 if a.breaker == "open" else 0.0),
                subject=a.id,
                summary=f"agent {a.id} is failing: breaker {a.breaker}, learned error rate "
                f"{a.error_rate:.0%}",
                evidence={
                    "breaker": a.breaker,
                    "error_rate": a.error_rate,
                    "failed_attempts": a.failed,
                    "attempts": attempts,
                },
                suggestion=f"check agent {a.id}'s logs; lower failureThreshold (or set "
                "failureRateThreshold) to cut it out sooner, raise timeout to keep it out longer",
            )
        )
    return out


def _slow(agents: list[AgentFigures]) -> list[Finding]:
    learned = [a for a in agents if a.samples >= MIN_SAMPLES]
    out = []
    for a in learned:
        peers = [b.speed for b in learned if b.id != a.id]
        median = statistics.median(peers) if peers else None
        references = [
            ("its speed hint", a.speed_hint, SLOW_VS_HINT),
            ("its own speed over the run", a.run_speed, SLOW_VS_OWN),
            ("its peers' median", median, SLOW_VS_PEERS),
        ]
        below = [
            (a.speed / ref, against, ref)
            for against, ref, limit in references
            if ref is not None and ref > 0 and a.speed / ref < limit
        ]
        if not below:
            continue
        ratio, against, reference = min(below)
        out.append(
            Finding(
                kind="slow-agent",
                component="agents",
                severity=min(1.0, 1.0 - ratio),
                subject=a.id,
                summary=f"agent {a.id} runs at {ratio:.0%} of {against}",
                evidence={
                    "learned_speed": a.speed,
                    "reference_speed": reference,
                    "ratio": ratio,
                    "speed_hint": a.speed_hint,
                    "run_speed": a.run_speed,
                    "peers_median_speed": median,
                    "samples": a.samples,
                },
                suggestion=f"the adaptive strategy already sends {a.id} less; lower its "
                "capacity or speed_hint, or set slowCallDuration so its breaker opens on slow "
                "calls",
            )
        )
    return out


def _saturated(s: Snapshot) -> list[Finding]:
    agents = [a for a in s.agents if not a.draining]
    if not agents:
        return []
    full = [a for a in agents if a.in_flight >= a.capacity]
    waiting = s.shared_queued + s.agent_queued
    if not full or waiting == 0:
        return []
    share = len(full) / len(agents)
    capacity = sum(a.capacity for a in agents)
    return [
        Finding(
            kind="saturated-agents",
            component="agents",
            severity=share * min(1.0, waiting / capacity),
            subject=None,
            summary=f"{len(full)} of {len(agents)} agents run at full capacity with "
            f"{waiting} tasks waiting",
            evidence={
                "saturated": sorted(a.id for a in full),
                "waiting": waiting,
                "capacity": capacity,
                "utilization": s.report.get("utilization"),
            },
            suggestion="add agents or capacity; set maxQueueSize to push back on submitters",
        )
    ]


def _queue_growth(s: Snapshot) -> list[Finding]:
    r = s.report
    if not s.elapsed_s:
        return []
    arrival = r["accepted"] / s.elapsed_s
    service = (r["completed"] + r["failed"] + r["cancelled"]) / s.elapsed_s
    capacity = sum(a.capacity for a in s.agents)
    if r["open"] <= capacity or arrival <= GROWTH_RATIO * service:
        return []
    ratio = arrival / service if service > 0 else None
    return [
        Finding(
            kind="queue-growth",
            component="task-queue",
            severity=1.0 if ratio is None else min(1.0, ratio - 1.0),
            subject=None,
            summary="tasks arrive faster than they end: "
            f"{arrival:.1f}/s in, {service:.1f}/s out, {r['open']} open",
            evidence={
                "arrival_rate_per_s": arrival,
                "service_rate_per_s": service,
                "open": r["open"],
                "capacity": capacity,
                "elapsed_s": s.elapsed_s,
            },
            suggestion="add agents (the queue grows without bound otherwise); set "
            "maxQueueSize to bound it",
        )
    ]


def _aging(s: Snapshot) -> list[Finding]:
    out = []
    limit = AGING_FACTOR * s.aging_interval * 1000.0
    for level in ("low", "background"):
        p99 = s.report["per_priority"][level]["queue_latency_ms"]["p99"]
        if p99 is None or p99 <= limit:
            continue
        out.append(
            Finding(
                kind="aging-pressure",
                component="task-queue",
                severity=min(1.0, p99 / (4.0 * limit)),
                subject=level,
                summary=f"{level} tasks wait {p99 / 1000.0:.1f} s (p99), over "
                f"{AGING_FACTOR:g} aging intervals",
                evidence={"queue_latency_p99_ms": p99, "aging_interval_s": s.aging_interval},
                suggestion="lower agingInterval (or raise agingBoost) so waiting tasks climb "
                "sooner; raise levelWeights.low; or add capacity",
            )
        )
    return out


def _uneven(s: Snapshot) -> list[Finding]:
    jain = s.report.get("jain_fairness")
    idle = [a.id for a in s.agents if a.in_flight == 0 and a.breaker == "closed"]
    if jain is None or jain >= UNEVEN_JAIN or s.agent_queued == 0 or not idle:
        return []
    return [
        Finding(
            kind="uneven-load",
            component="swarm-coordination",
            severity=1.0 - jain,
            subject=None,
            summary=f"load is uneven (Jain {jain:.2f}) while {len(idle)} agents idle and "
            f"{s.agent_queued} tasks wait at agents",
            evidence={
                "jain_fairness": jain,
                "load_variance": s.report.get("load_variance"),
                "idle": sorted(idle),
                "queued_at_agents": s.agent_queued,
            },
            suggestion="lower stealThreshold or migrationThreshold; use strategy adaptive",
        )
    ]


def _timed_severity(f: TimerFigures, busy_limit: float, p99_limit: float) -> float | None:
    """Severity of a timer over its limits (its busy share, or its p99 against four times the
    limit), or None when it stays under both or has too few samples to tell."""
    if f.samples < MIN_TIMED or (f.busy_share < busy_limit and f.p99_ms < p99_limit):
        return None
    return min(1.0, max(f.busy_share, f.p99_ms / (4.0 * p99_limit)))


def _timer_evidence(f: TimerFigures) -> dict[str, Any]:
    return {
        "busy_share": f.busy_share,
        "p50_ms": f.p50_ms,
        "p99_ms": f.p99_ms,
        "max_ms": f.max_ms,
        "samples": f.samples,
        "window_s": f.span_s,
    }


def _decision_time(f: TimerFigures | None) -> list[Finding]:
    severity = None if f is None else _timed_severity(f, DECISION_BUSY_SHARE, DECISION_P99_MS)
    if f is None or severity is None:
        return []
    per_task = "" if f.per_item_us is None else f", {f.per_item_us:.0f} µs per task placed"
    return [
        Finding(
            kind="coordinator-time",
            component="swarm-coordination",
            severity=severity,
            subject=None,
            summary=f"the coordinator's decisions take {f.busy_share:.0%} of the time "
            f"(p99 {f.p99_ms:.1f} ms per dispatch or tick{per_task})",
            evidence={**_timer_evidence(f), "tasks_placed": f.items, "per_task_us": f.per_item_us},
            suggestion="submit in batches (submit_many, /v1/tasks/batch) so one dispatch places "
            "many tasks; raise checkInterval and lower maxMoves so rebalancing and stealing "
            "cost less; strategy least_connections decides without the adaptive model's search; "
            "split a very large swarm over several coordinators",
        )
    ]


def _store_latency(f: TimerFigures | None) -> list[Finding]:
    severity = None if f is None else _timed_severity(f, FLUSH_BUSY_SHARE, FLUSH_P99_MS)
    if f is None or severity is None:
        return []
    return [
        Finding(
            kind="store-latency",
            component="task-queue",
            severity=severity,
            subject=None,
            summary=f"the store's flushes take {f.p99_ms:.1f} ms (p99) and {f.busy_share:.0%} "
            "of the time; every durable submit waits for one",
            evidence={
                **_timer_evidence(f),
                "rows": f.items,
                "rows_per_flush": f.items / f.samples,
            },
            suggestion="submit in batches (one commit per batch); use ?synchronous=normal "
            "rather than full in the store URL unless a power cut must lose nothing; keep the "
            "file on a local disk, not a network filesystem; a shorter resultRetention keeps "
            "the file and its purges small",
        )
    ]
