"""`swarmbalancer run --store URL`: the run journaled to a SQLite file; a bad URL is one line."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from swarmbalancer.cli.app import app

pytestmark = pytest.mark.timeout(60)

WORKLOAD = (
    "agents: [{id: a, count: 2}]\ntasks: {count: 20, work: {dist: exponential, mean: 1e-3}}\n"
)


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_run_with_a_sqlite_store_records_every_task_as_done(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(WORKLOAD, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "w.yaml", "--json", "--store", "sqlite:///w.db"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["completed"] == 20
    with contextlib.closing(sqlite3.connect(tmp_path / "w.db")) as db:
        states = db.execute("SELECT state, count(*) FROM tasks GROUP BY state").fetchall()
    assert states == [("done", 20)]


def test_run_with_a_malformed_store_url_exits_2_naming_store(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(WORKLOAD, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "w.yaml", "--quiet", "--store", "sqlite://x"])
    assert result.exit_code == 2
    assert "store: " in result.output and "Traceback" not in result.output
