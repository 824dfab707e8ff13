"""The diagnosis names the demo's injected faults while they happen (slow-3 failing from 2 s to
6 s, mid-1 slowed 3x from 4 s to 7 s), ranks findings, and filters them by component."""

from __future__ import annotations

import functools

import pytest

from swarmbalancer.config import load_config
from swarmbalancer.errors import ConfigError
from swarmbalancer.metrics.diagnosis import COMPONENTS, diagnose
from swarmbalancer.metrics.snapshot import Snapshot, take_snapshot
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
