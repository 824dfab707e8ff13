"""`swarmbalancer simulate`: reports as `run --json` gives them, strategy comparisons, sweeps,
plots, and one-line errors with status 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from swarmbalancer.cli.app import app
from swarmbalancer.config import STRATEGIES
from swarmbalancer.coordinator import Coordinator

SHARED = Path(__file__).resolve().parents[3] / "shared" / "workloads"
SHARED_FILES = sorted(p.name for p in SHARED.glob("*.yaml"))
HETERO = str(SHARED / "heterogeneous.yaml")
REPORT_KEYS = set(Coordinator().report())


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray swarmbalancer.json in the working directory


def simulate(*args: str) -> Result:
    return CliRunner().invoke(app, ["simulate", *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("name", SHARED_FILES)
def test_every_shared_workload_simulates_without_losing_a_task(name: str) -> None:
    report = as_json(simulate(str(SHARED / name), "--json"))
    assert set(report) == REPORT_KEYS
    assert report["lost"] == 0 and report["open"] == 0
    assert report["completed"] + report["failed"] == report["accepted"] > 0


def test_all_strategies_give_one_report_each() -> None:
    reports = as_json(simulate(HETERO, "--strategy", "all", "--json"))
    assert list(reports) == list(STRATEGIES)
    assert all(set(r) == REPORT_KEYS and r["lost"] == 0 for r in reports.values())
    ratio = {name: r["makespan_s"] / r["lower_bound_s"] for name, r in reports.items()}
    assert ratio["adaptive"] < ratio["round_robin"]


def test_a_sweep_gives_one_report_per_value() -> None:
    reports = as_json(
        simulate(HETERO, "-s", "round_robin", "--sweep", "stealThreshold=0,5", "--json")
    )
    assert list(reports) == ["stealThreshold=0", "stealThreshold=5"]
    assert reports["stealThreshold=0"]["makespan_s"] != reports["stealThreshold=5"]["makespan_s"]


def test_a_sweep_over_several_strategies_labels_both() -> None:
    reports = as_json(
        simulate(HETERO, "-s", "round_robin,adaptive", "--sweep", "stealThreshold=0,5", "--json")
    )
    assert list(reports) == [
        "round_robin stealThreshold=0",
        "round_robin stealThreshold=5",
        "adaptive stealThreshold=0",
        "adaptive stealThreshold=5",
    ]


def test_the_table_has_a_row_per_strategy() -> None:
    result = simulate(HETERO, "--strategy", "all")
    assert result.exit_code == 0, result.output
    for name in STRATEGIES:
        assert f" {name} " in result.stdout
    assert "makespan" in result.stdout and "Jain's" in result.stdout
    assert "…" not in result.stdout  # every figure printed whole


def test_a_bad_sweep_key_exits_2_naming_it() -> None:
    line = one_line_error(simulate(HETERO, "--sweep", "stealThresholdd=0,5"))
    assert "--sweep" in line and "stealThresholdd" in line


@pytest.mark.parametrize(
    ("sweep", "named"),
    [
        ("stealThreshold", "KEY=V1,V2"),
        ("=1,2", "KEY=V1,V2"),
        ("stealThreshold=1,,2", "stealThreshold"),
        ("stealThreshold=-1", "stealThreshold"),
        ("strategy=fastest", "strategy"),
    ],
)
def test_a_bad_sweep_exits_2(sweep: str, named: str) -> None:
    assert named in one_line_error(simulate(HETERO, "--sweep", sweep))


def test_bad_strategy_config_and_workload_exit_2_naming_the_field(tmp_path: Path) -> None:
    assert "strategy" in one_line_error(simulate(HETERO, "--strategy", "fastest"))
    assert "--config" in one_line_error(simulate(HETERO, "--config", "{nope"))
    assert "stealThreshold" in one_line_error(simulate(HETERO, "-c", '{"stealThreshold": -2}'))
    bad = tmp_path / "bad.yaml"
    bad.write_text("agents: [{id: a}]\ntasks: {count: 0, work: {dist: constant, value: 1}}\n")
    assert "tasks.count" in one_line_error(simulate(str(bad)))
    assert "no such file" in one_line_error(simulate(str(tmp_path / "missing.yaml")))


def test_plot_writes_a_png(tmp_path: Path) -> None:
    target = tmp_path / "cmp.png"
    result = simulate(HETERO, "-s", "round_robin,adaptive", "--plot", str(target), "--quiet")
    assert result.exit_code == 0, result.output
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_plot_summarises_a_large_swarm(tmp_path: Path) -> None:
    workload = tmp_path / "wide.yaml"
    workload.write_text(
        "agents: [{id: w, count: 40, speed: 1.0}, {id: f, count: 10, speed: 3.0}]\n"
        "tasks: {count: 2000, work: {dist: exponential, mean: 0.01}}\n"
    )
    target = tmp_path / "wide.png"
    assert simulate(str(workload), "--plot", str(target), "--json").exit_code == 0
    assert target.stat().st_size > 10_000


def test_plot_without_matplotlib_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    line = one_line_error(simulate(HETERO, "--plot", str(tmp_path / "x.png")))
    assert "swarmbalancer[plot]" in line


def test_plot_into_a_missing_directory_exits_2(tmp_path: Path) -> None:
    line = one_line_error(simulate(HETERO, "--plot", str(tmp_path / "no" / "x.png"), "-q"))
    assert "--plot" in line
