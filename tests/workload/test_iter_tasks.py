"""`iter_tasks` streams exactly the list `generate_tasks` returns, for every kind of source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from swarmbalancer.model import Priority
from swarmbalancer.workload import generate_tasks, iter_tasks, load_workload, parse_workload

SHARED = Path(__file__).resolve().parents[3] / "shared" / "workloads"
SHARED_FILES = sorted(p.name for p in SHARED.glob("*.yaml"))

ARRIVALS: list[dict[str, Any]] = [
    {"process": "batch", "at": 1.5},
    {"process": "poisson", "rate": 300},
    {"process": "bursty", "on_rate": 500, "off_rate": 20, "on": 0.2, "off": 0.5},
    {"process": "diurnal", "rate": 200, "amplitude": 0.8, "period": 2.0},
]


@pytest.mark.parametrize("name", SHARED_FILES)
def test_shared_workloads_stream_their_task_list(name: str) -> None:
    workload = load_workload(SHARED / name)
    assert list(iter_tasks(workload)) == generate_tasks(workload)


@pytest.mark.parametrize("arrival", ARRIVALS, ids=lambda a: str(a["process"]))
def test_every_arrival_process_streams_the_same_tasks(arrival: dict[str, Any]) -> None:
    workload = parse_workload(
        {
            "seed": 21,
            "agents": [{"id": "a", "count": 2, "region": "eu"}, {"id": "b", "region": "us"}],
            "tenants": [{"id": "x", "weight": 2}, {"id": "y"}],
            "tasks": {
                "count": 500,
                "work": {"dist": "bimodal", "short": 0.01, "long": 0.1, "p_long": 0.1},
                "arrival": arrival,
                "priority": {"critical": 0.1, "normal": 0.6, "background": 0.3},
                "tenant": {"zipf": 1.2},
                "deadline": {"slack": 3},
                "affinity": {"eu": 0.3, "b": 0.1},
                "estimate": {"error": 0.5},
            },
        },
        Path("."),
    )
    streamed = list(iter_tasks(workload))
    assert streamed == generate_tasks(workload)
    assert [r.arrival for r in streamed] == sorted(r.arrival for r in streamed)
    assert {r.priority for r in streamed} == {
        Priority.CRITICAL,
        Priority.NORMAL,
        Priority.BACKGROUND,
    }
    assert any(r.estimate != r.work for r in streamed)


def test_an_unordered_arrival_trace_is_sorted(tmp_path: Path) -> None:
    (tmp_path / "times.jsonl").write_text("\n".join(json.dumps(t) for t in [3.0, 1.0, 2.0, 1.0]))
    workload = parse_workload(
        {
            "agents": [{"id": "a"}],
            "tasks": {
                "count": 4,
                "work": {"dist": "constant", "value": 0.1},
                "arrival": {"process": "trace", "file": "times.jsonl"},
            },
        },
        tmp_path,
    )
    records = list(iter_tasks(workload))
    assert records == generate_tasks(workload)
    assert [(r.id, r.arrival) for r in records] == [
        ("t000001", 1.0),
        ("t000003", 1.0),
        ("t000002", 2.0),
        ("t000000", 3.0),
    ]


def test_a_record_is_an_immutable_named_tuple() -> None:
    (record, *_) = generate_tasks(load_workload(SHARED / "tenants.yaml"))
    with pytest.raises(AttributeError):
        record.work = 1.0  # type: ignore[misc]
    assert record._replace(work=1.0).work == 1.0
