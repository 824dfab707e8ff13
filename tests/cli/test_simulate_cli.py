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


def test_sweep_values_may_be_json_with_commas() -> None:
    weights = ['{"latency": 1, "cost": 1}', '{"latency": 1, "balance": 2}']
    reports = as_json(
        simulate(HETERO, "--sweep", "objectiveWeights=" + ",".join(weights), "--json")
    )
    assert list(reports) == [f"objectiveWeights={w}" for w in weights]


def test_sweep_of_disciplines_gives_one_run_each() -> None:
    reports = as_json(simulate(HETERO, "--sweep", "discipline=fifo,cfs,wfq", "--json"))
    assert list(reports) == ["discipline=fifo", "discipline=cfs", "discipline=wfq"]


def test_split_values_keeps_commas_inside_brackets_and_strings() -> None:
    from swarmbalancer.cli.simulate import split_values

    assert split_values('1,[2,3],{"a": "x,}"},"q\\",r",z') == [
        "1",
        "[2,3]",
        '{"a": "x,}"}',
        '"q\\",r"',
        "z",
    ]


def queue_bound_workload(tmp_path: Path, config: str) -> str:
    path = tmp_path / "bounded.yaml"
    path.write_text(
        "agents: [{id: a, capacity: 2}]\n"
        "tasks: {count: 40, work: {dist: constant, value: 1.0}}\n"
        f"config: {config}\n"
    )
    return str(path)


@pytest.mark.timeout(30)
def test_simulate_honours_max_queue_size_by_holding_arrivals_as_run_does(tmp_path: Path) -> None:
    unbounded = as_json(simulate(queue_bound_workload(tmp_path, "{}"), "--json"))
    bounded = as_json(simulate(queue_bound_workload(tmp_path, "{maxQueueSize: 3}"), "--json"))
    assert bounded["completed"] == unbounded["completed"] == 40
    assert bounded["makespan_s"] == unbounded["makespan_s"] == 20.0
    # held arrivals are submitted when there is room, so none waits behind more than 3 queued
    assert unbounded["queue_latency_ms"]["max"] == 19_000.0
    assert bounded["queue_latency_ms"]["max"] <= 2_000.0


def test_simulate_raises_queue_full_as_run_does(tmp_path: Path) -> None:
    path = queue_bound_workload(tmp_path, "{maxQueueSize: 3, queueFull: raise}")
    assert "maxQueueSize: 3 tasks already queued" in one_line_error(simulate(path, "-q"))


@pytest.mark.parametrize("name", ["x.pdf", "x.svg", "x", "x.png.txt"])
def test_plot_refuses_an_extension_it_will_not_write(tmp_path: Path, name: str) -> None:
    line = one_line_error(simulate(HETERO, "--plot", str(tmp_path / name), "-q"))
    assert "only PNG is written" in line
    assert not (tmp_path / name).exists()


def test_plot_overlays_every_runs_sojourn_cdf_in_one_panel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    figures: list[Any] = []
    original = Figure.savefig

    def keep(self: Any, *args: Any, **kwargs: Any) -> None:
        figures.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    target = tmp_path / "cmp.png"
    result = simulate(HETERO, "-s", "round_robin,least_connections,adaptive", "--plot", str(target))
    assert result.exit_code == 0, result.output
    (figure,) = figures
    cdf = [ax for ax in figure.axes if "sojourn" in ax.get_title()]
    assert len(cdf) == 1
    labels = [text.get_text() for text in cdf[0].get_legend().get_texts()]
    assert [label.split(" (p99")[0] for label in labels] == [
        "round_robin",
        "least_connections",
        "adaptive",
    ]
    load_panels = [ax for ax in figure.axes if "load per agent" in ax.get_title()]
    assert len(load_panels) == 3 and all(ax.get_legend() is not None for ax in load_panels)


def test_agents_are_grouped_by_their_id_without_the_index() -> None:
    from swarmbalancer.cli.plot import agent_groups

    groups = agent_groups(["slow-0", "slow-1", "fast-0", "solo", "w-1-0"])
    assert groups == {
        "slow": ["slow-0", "slow-1"],
        "fast": ["fast-0"],
        "solo": ["solo"],
        "w-1": ["w-1-0"],
    }
