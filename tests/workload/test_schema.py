"""The workload file format: the shared example files load, and every mistake names its field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from swarmbalancer.errors import WorkloadError
from swarmbalancer.model import Priority
from swarmbalancer.workload import (
    BurstyArrival,
    GeneratedTasks,
    ParetoWork,
    TraceTasks,
    Workload,
    generate_tasks,
    load_workload,
    parse_workload,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "workloads"

BASE: dict[str, Any] = {
    "seed": 1,
    "agents": [{"id": "worker", "count": 3, "region": "eu"}, {"id": "solo", "speed": 2.0}],
    "tasks": {"count": 10, "work": {"dist": "exponential", "mean": 0.1}},
}


def parse(data: dict[str, Any], base_dir: Path = Path(".")) -> Workload:
    return parse_workload(data, base_dir, source="x.yaml")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shared_directory_is_found() -> None:
    assert SHARED.is_dir(), SHARED
    assert len(sorted(SHARED.glob("*.yaml"))) >= 4


@pytest.mark.parametrize(
    ("name", "agents", "tasks"),
    [
        ("flaky-agent.yaml", 8, 1500),
        ("heterogeneous.yaml", 16, 2000),
        ("priority-mix.yaml", 8, 4000),
        ("tenants.yaml", 4, 3000),
    ],
)
def test_every_shared_workload_loads_unchanged(name: str, agents: int, tasks: int) -> None:
    workload = load_workload(SHARED / name)
    assert len(workload.agent_specs()) == agents
    assert isinstance(workload.tasks, GeneratedTasks)
    assert workload.tasks.count == tasks
    assert len(generate_tasks(workload)) == tasks


def test_the_heterogeneous_file_reads_as_written() -> None:
    workload = load_workload(SHARED / "heterogeneous.yaml")
    assert workload.seed == 42
    assert isinstance(workload.tasks, GeneratedTasks)
    work = workload.tasks.work
    assert isinstance(work, ParetoWork)
    assert (work.alpha, work.mean, work.max) == (1.5, 0.02, 0.2)
    speeds = workload.agent_speeds()
    assert speeds["slow-0"] == 1.0 and speeds["mid-3"] == 2.0 and speeds["fast-3"] == 4.0


def test_the_flaky_file_keeps_snake_case_fault_keys() -> None:
    workload = load_workload(SHARED / "flaky-agent.yaml")
    first, second = workload.faults
    assert (first.agent, first.start, first.until, first.error_rate) == ("worker-2", 0.2, 2.2, 1.0)
    assert (second.agent, second.slowdown) == ("remote-1", 4.0)


def test_tenant_weights_flow_into_the_balancer_config() -> None:
    workload = load_workload(SHARED / "tenants.yaml")
    config = workload.balancer_config()
    assert config.tenant_weights == {"gold": 4.0, "silver": 2.0, "bronze": 1.0, "free": 1.0}
    assert config.seed == 3


def test_config_overrides_win_over_workload_defaults() -> None:
    data = copy.deepcopy(BASE)
    data["config"] = {"steal_threshold": 9, "seed": 77}
    config = parse(data).balancer_config()
    assert (config.steal_threshold, config.seed) == (9, 77)


def test_agent_ids_expand_by_count_and_weight_never_defaults_to_the_true_speed() -> None:
    workload = parse(BASE)
    assert workload.agent_ids() == ["worker-0", "worker-1", "worker-2", "solo"]
    solo = workload.agent_specs()[-1]
    assert (solo.weight, solo.capacity) == (1.0, 1)
    assert workload.agent_speeds()["solo"] == 2.0
    data = copy.deepcopy(BASE)
    data["agents"][-1]["speed_hint"] = 1.5
    assert parse(data).agent_specs()[-1].weight == 1.5


def test_the_balancer_is_told_a_speed_hint_only_when_the_file_gives_one() -> None:
    data = copy.deepcopy(BASE)
    data["agents"][0]["speed_hint"] = 1.5
    workload = parse(data)
    hints = {s.id: s.speed_hint for s in workload.agent_specs()}
    assert hints == {"worker-0": 1.5, "worker-1": 1.5, "worker-2": 1.5, "solo": None}
    assert workload.agent_speeds() == {"worker-0": 1.0, "worker-1": 1.0, "worker-2": 1.0, "solo": 2}
    data["agents"][0]["speed_hint"] = 0
    with pytest.raises(WorkloadError, match=r"agents\[0\].speed_hint"):
        parse(data)


def test_json_and_yaml_files_give_the_same_workload(tmp_path: Path) -> None:
    as_json = load_workload(write(tmp_path / "w.json", json.dumps(BASE)))
    as_yaml = load_workload(write(tmp_path / "w.yaml", json.dumps(BASE)))  # JSON is YAML
    assert as_json == as_yaml
    assert generate_tasks(as_json) == generate_tasks(as_yaml)


def test_yaml_on_and_off_keys_stay_strings(tmp_path: Path) -> None:
    text = """
agents: [{id: a}]
tasks:
  count: 3
  work: {dist: constant, value: 1}
  arrival: {process: bursty, on_rate: 10, off_rate: 0, on: 1, off: 2}
"""
    workload = load_workload(write(tmp_path / "bursty.yaml", text))
    assert isinstance(workload.tasks, GeneratedTasks)
    assert isinstance(workload.tasks.arrival, BurstyArrival)
    assert (workload.tasks.arrival.on, workload.tasks.arrival.off) == (1.0, 2.0)


def test_yaml_exponents_without_a_dot_are_numbers(tmp_path: Path) -> None:
    text = "agents: [{id: a}]\ntasks: {count: 1, work: {dist: exponential, mean: 5e-3}}\n"
    workload = load_workload(write(tmp_path / "exp.yaml", text))
    assert isinstance(workload.tasks, GeneratedTasks)
    assert workload.tasks.work.expected() == 0.005


def test_a_task_trace_loads_relative_to_the_workload_file(tmp_path: Path) -> None:
    (tmp_path / "traces").mkdir()
    write(
        tmp_path / "traces" / "tasks.jsonl",
        '{"work": 0.5}\n\n{"id": "big", "work": 2, "arrival": 1.5, "priority": "high",'
        ' "tenant": "acme", "deadline": 9, "affinity": "eu"}\n',
    )
    data = {"agents": [{"id": "a", "region": "eu"}], "tasks": {"file": "traces/tasks.jsonl"}}
    workload = load_workload(write(tmp_path / "w.json", json.dumps(data)))
    assert isinstance(workload.tasks, TraceTasks)
    first, second = generate_tasks(workload)
    assert (first.id, first.work, first.arrival, first.priority) == (
        "t000000",
        0.5,
        0.0,
        Priority.NORMAL,
    )
    assert (second.id, second.priority, second.tenant, second.deadline) == (
        "big",
        Priority.HIGH,
        "acme",
        9.0,
    )
    assert second.affinity == ("eu",) and second.estimate == 2.0


def test_an_arrival_trace_loads_numbers_and_objects(tmp_path: Path) -> None:
    write(tmp_path / "arrivals.jsonl", '0.5\n{"arrival": 0.25, "other": 1}\n3\n')
    data = copy.deepcopy(BASE)
    data["tasks"]["count"] = 2
    data["tasks"]["arrival"] = {"process": "trace", "file": "arrivals.jsonl"}
    records = generate_tasks(parse(data, tmp_path))
    assert [r.arrival for r in records] == [0.25, 0.5]
    assert [r.id for r in records] == ["t000001", "t000000"]


def _set(path: str, value: Any) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return mutate


def _drop(key: str) -> Any:
    return lambda data: data.pop(key)


MALFORMED = [
    ("unknown top-level key", _set("extras", 1), "extras: unknown key"),
    ("unknown nested key", _set("agents.0.sped", 2), "agents[0].sped: unknown key"),
    (
        "negative rate",
        _set("tasks.arrival", {"process": "poisson", "rate": -5}),
        "tasks.arrival.rate: must be >= 1e-09, got -5",
    ),
    (
        "pareto alpha",
        _set("tasks.work", {"dist": "pareto", "alpha": 0.9, "mean": 1}),
        "tasks.work.alpha: must be > 1",
    ),
    (
        "unknown distribution",
        _set("tasks.work", {"dist": "weibull", "mean": 1}),
        "tasks.work.dist: 'weibull' is not one of",
    ),
    (
        "fault on an unknown agent",
        _set("faults", [{"agent": "worker-9", "from": 0, "until": 1, "error_rate": 1}]),
        "faults[0].agent: no agent named 'worker-9'",
    ),
    (
        "fault on a group id",
        _set("faults", [{"agent": "worker", "from": 0, "error_rate": 1}]),
        "faults[0].agent: no agent named 'worker' (group 'worker' has ids worker-0 .. worker-2)",
    ),
    (
        "fault ends before it starts",
        _set("faults", [{"agent": "solo", "from": 2, "until": 1, "slowdown": 2}]),
        "faults[0].until: must be > from",
    ),
    (
        "fault key in camelCase",
        _set("faults", [{"agent": "solo", "from": 0, "errorRate": 1}]),
        "faults[0].errorRate: unknown key",
    ),
    (
        "probabilities not summing to 1",
        _set("tasks.priority", {"high": 0.5, "low": 0.3}),
        "tasks.priority: probabilities sum to 0.8; they must sum to 1 (within 0.01)",
    ),
    (
        "unknown priority level",
        _set("tasks.priority", {"urgent": 1.0}),
        "tasks.priority: 'urgent' is not a priority level",
    ),
    ("missing tasks", _drop("tasks"), "x.yaml: tasks: required"),
    ("no agents", _set("agents", []), "agents: must not be empty"),
    ("zero speed", _set("agents.1.speed", 0), "agents[1].speed: must be >= 1e-06, got 0"),
    ("count as a string", _set("agents.0.count", "3"), "agents[0].count: must be a valid integer"),
    ("leave before join", _set("agents.1.leave", 0), "agents[1].leave: must be > 0"),
    ("duplicate agent ids", _set("agents.1.id", "worker-1"), "agents[1].id: agent id 'worker-1'"),
    (
        "bad config key",
        _set("config", {"stealThresholdd": 1}),
        "config.stealThresholdd: unknown key",
    ),
    ("zipf without tenants", _set("tasks.tenant", {"zipf": 1.1}), "tasks.tenant.zipf: needs"),
    ("unknown affinity", _set("tasks.affinity", {"mars": 0.5}), "tasks.affinity.mars: no agent"),
    ("missing work dist", _set("tasks.work", {"mean": 1}), "tasks.work.dist: required"),
    ("nan", _set("tasks.work", {"dist": "exponential", "mean": float("nan")}), "tasks.work.mean"),
]


@pytest.mark.parametrize(("case", "mutate", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_workloads_name_the_field(case: str, mutate: Any, expected: str) -> None:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(WorkloadError) as info:
        parse(data)
    message = str(info.value)
    assert message.startswith("x.yaml: ")
    assert expected in message
    assert "\n" not in message


def test_tenant_mix_must_use_declared_tenants() -> None:
    data = copy.deepcopy(BASE)
    data["tenants"] = [{"id": "gold", "weight": 2}]
    data["tasks"]["tenant"] = {"gold": 0.5, "tin": 0.5}
    with pytest.raises(WorkloadError, match=r"tasks\.tenant\.tin: not declared in `tenants`"):
        parse(data)


def test_bad_yaml_is_a_workload_error(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.yaml", "agents: [{id: a}\ntasks: 3\n")
    with pytest.raises(WorkloadError, match=r"^broken\.yaml: not valid YAML \(line \d+"):
        load_workload(path)


def test_a_repeated_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "dup.yaml", "agents: [{id: a}]\nagents: [{id: b}]\n")
    with pytest.raises(WorkloadError, match="key 'agents' is given twice"):
        load_workload(path)


def test_bad_json_is_a_workload_error(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"^w\.json: not valid JSON"):
        load_workload(write(tmp_path / "w.json", "{"))


def test_a_missing_file_is_a_workload_error(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"^absent\.yaml: no such file"):
        load_workload(tmp_path / "absent.yaml")


def test_an_unknown_extension_is_a_workload_error(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"use \.yaml, \.yml or \.json"):
        load_workload(write(tmp_path / "w.txt", "{}"))


def test_a_top_level_list_is_a_workload_error(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="expected a mapping at the top level, got list"):
        load_workload(write(tmp_path / "w.yaml", "- 1\n"))


def test_a_bad_trace_line_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "t.jsonl", '{"work": 1}\n{"work": -1}\n')
    data = {"agents": [{"id": "a"}], "tasks": {"file": "t.jsonl"}}
    with pytest.raises(WorkloadError, match=r"tasks\.file: t\.jsonl line 2: work: must be >= 0"):
        parse(data, tmp_path)


def test_a_missing_trace_is_a_workload_error(tmp_path: Path) -> None:
    data = {"agents": [{"id": "a"}], "tasks": {"file": "nope.jsonl"}}
    with pytest.raises(WorkloadError, match=r"x\.yaml: tasks\.file: nope\.jsonl: no such file"):
        parse(data, tmp_path)


def test_a_short_arrival_trace_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", "0\n1\n")
    data = copy.deepcopy(BASE)
    data["tasks"]["arrival"] = {"process": "trace", "file": "a.jsonl"}
    with pytest.raises(WorkloadError, match=r"a\.jsonl has 2 arrivals, tasks\.count asks for 10"):
        parse(data, tmp_path)


def test_the_documented_examples_load(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "workloads.md").read_text("utf-8")
    yaml_example = doc.split("```yaml\n")[-1].split("```")[0]
    json_example = doc.split("```json\n")[-1].split("```")[0]
    documented = load_workload(write(tmp_path / "example.yaml", yaml_example))
    assert len(generate_tasks(documented)) == 2000
    assert documented.balancer_config().discipline == "wfq"
    assert len(generate_tasks(load_workload(write(tmp_path / "e.json", json_example)))) == 100
