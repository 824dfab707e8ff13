"""The diagnosis names the demo's injected faults while they happen (slow-3 failing from 2 s to
6 s, mid-1 slowed 3x from 4 s to 7 s), ranks findings, filters them by component, and names a
slow coordinator or store from their timings."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from swarmbalancer.config import load_config
from swarmbalancer.errors import ConfigError
from swarmbalancer.metrics.diagnosis import (
    COMPONENTS,
    DECISION_BUSY_SHARE,
    DECISION_P99_MS,
    FLUSH_BUSY_SHARE,
    FLUSH_P99_MS,
    MIN_TIMED,
    diagnose,
)
from swarmbalancer.metrics.snapshot import Snapshot, take_snapshot
from swarmbalancer.metrics.timing import TimerFigures
from swarmbalancer.sim.simulate import WorkloadSimulation
from swarmbalancer.workload.demo import demo_workload


def demo_snapshot(at: float) -> Snapshot:
    """The simulated demo swarm stopped at virtual time `at`."""
    spec = demo_workload()
    sim = WorkloadSimulation(spec, load_config({"seed": spec.seed, **(spec.config or {})}))
    sim.driver.run = functools.partial(sim.driver.run, until=at)  # type: ignore[method-assign]
    sim.run()
    return take_snapshot(sim.coordinator, at)


@pytest.mark.timeout(30)
def test_diagnosis_names_the_failing_and_the_slowed_agent_during_the_faults() -> None:
    findings = diagnose(demo_snapshot(5.5), "agents")
    named = {(f.kind, f.subject) for f in findings}
    assert ("failing-agent", "slow-3") in named
    assert ("slow-agent", "mid-1") in named
    assert not {s for k, s in named if k in ("failing-agent", "slow-agent")} - {"slow-3", "mid-1"}
    slow = next(f for f in findings if f.subject == "mid-1")
    assert slow.evidence["ratio"] < 0.6
    assert slow.evidence["learned_speed"] < slow.evidence["reference_speed"]
    assert [f.severity for f in findings] == sorted((f.severity for f in findings), reverse=True)
    assert all(f.suggestion for f in findings)


@pytest.mark.timeout(30)
def test_before_the_faults_no_agent_is_called_failing_or_slow() -> None:
    kinds = {f.kind for f in diagnose(demo_snapshot(1.5))}
    assert not kinds & {"failing-agent", "slow-agent"}


@pytest.mark.timeout(30)
def test_components_filter_the_findings_and_an_unknown_one_is_a_config_error() -> None:
    snapshot = demo_snapshot(5.5)
    every = diagnose(snapshot)
    for component in COMPONENTS[2:]:
        assert diagnose(snapshot, component) == [f for f in every if f.component == component]
    assert diagnose(snapshot, "load-balancer") == every
    with pytest.raises(ConfigError, match=r"^component:"):
        diagnose(snapshot, "memory")


def timed(
    *, samples: int = 100, busy: float = 0.0, p99_ms: float = 1.0, items: int = 50
) -> TimerFigures:
    """Timer figures as a window of `samples` calls would give them."""
    return TimerFigures(
        samples=samples,
        items=items,
        span_s=10.0,
        busy_share=busy,
        p50_ms=p99_ms / 2,
        p99_ms=p99_ms,
        max_ms=p99_ms * 1.5,
        mean_ms=p99_ms / 2,
        per_item_us=None if items == 0 else busy * 10.0 / items * 1e6,
    )


@pytest.fixture(scope="module")
def quiet() -> Snapshot:
    """The demo before its faults: no finding about agents, timings added per test."""
    return demo_snapshot(1.5)


@pytest.mark.parametrize(
    ("decision", "flush", "kinds"),
    [
        (timed(busy=DECISION_BUSY_SHARE + 0.1), None, {"coordinator-time"}),
        (timed(p99_ms=DECISION_P99_MS * 2), None, {"coordinator-time"}),
        (None, timed(p99_ms=FLUSH_P99_MS + 10), {"store-latency"}),
        (None, timed(busy=FLUSH_BUSY_SHARE + 0.05), {"store-latency"}),
        (timed(busy=0.9, p99_ms=500), timed(p99_ms=80), {"coordinator-time", "store-latency"}),
        (timed(busy=0.1, p99_ms=2), timed(busy=0.05, p99_ms=5), set()),
        (timed(samples=MIN_TIMED - 1, busy=0.9), timed(samples=MIN_TIMED - 1, p99_ms=900), set()),
    ],
)
def test_a_slow_coordinator_or_store_is_a_finding_with_its_timings_as_evidence(
    quiet: Snapshot, decision: TimerFigures | None, flush: TimerFigures | None, kinds: set[str]
) -> None:
    snapshot = dataclasses.replace(quiet, decision=decision, flush=flush)
    found = {
        f.kind: f for f in diagnose(snapshot) if f.kind in ("coordinator-time", "store-latency")
    }
    assert set(found) == kinds
    if "coordinator-time" in found:
        f = found["coordinator-time"]
        assert f.component == "swarm-coordination" and 0 < f.severity <= 1
        assert decision is not None and f.evidence["p99_ms"] == decision.p99_ms
        assert f.evidence["busy_share"] == decision.busy_share and "batches" in f.suggestion
        assert diagnose(snapshot, "swarm-coordination").count(f) == 1
    if "store-latency" in found:
        f = found["store-latency"]
        assert f.component == "task-queue" and 0 < f.severity <= 1
        assert flush is not None and f.evidence["rows_per_flush"] == flush.items / flush.samples
        assert "synchronous" in f.suggestion
        assert diagnose(snapshot, "task-queue").count(f) == 1


def test_a_worse_timing_ranks_higher(quiet: Snapshot) -> None:
    mild = dataclasses.replace(quiet, decision=timed(busy=0.55))
    severe = dataclasses.replace(quiet, decision=timed(busy=0.95))

    def severity(s: Snapshot) -> float:
        return next(f.severity for f in diagnose(s) if f.kind == "coordinator-time")

    assert severity(mild) < severity(severe)
