"""Every input reproducer of issue 10 through the command line: status 2 and one stderr line
naming the field, for `run` and `simulate`, within a time limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from clihelpers import invoke, one_line_error

VALID = "agents: [{id: a}]\ntasks: {count: 3, work: {dist: constant, value: 0.001}}\n"

REPRODUCERS = [
    ("count-2-63.yaml", VALID.replace("count: 3", f"count: {2**63}"), "tasks.count: must be <="),
    (
        "billion-agents.yaml",
        VALID.replace("{id: a}", "{id: a, count: 1000000000}"),
        "agents[0].count: must be <= 100000",
    ),
    ("deep.yaml", VALID + "name: " + "[" * 600 + "]" * 600, "nested deeper than 64 levels"),
    (
        "deep.json",
        '{"agents": [{"id": "a"}], "name": ' + "[" * 600 + "]" * 600 + "}",
        "nested deeper than 64 levels",
    ),
    ("digits.yaml", VALID.replace("count: 3", "count: " + "7" * 5000), "tasks.count: an integer"),
    (
        "digits.json",
        '{"agents": [{"id": "a"}], "tasks": {"count": ' + "7" * 5000 + "}}",
        "tasks.count: an integer of 5000 digits",
    ),
    (
        "sigma.yaml",
        VALID.replace("constant, value: 0.001", "lognormal, mean: 1, sigma: 1e200"),
        "tasks.work.sigma: must be <= 10",
    ),
    ("nul.yaml", VALID + "\x00", "line 3: NUL byte"),
    ("dup.json", '{"agents": [], "agents": []}', "key 'agents' is given twice"),
    ("empty.yaml", "", "expected a mapping at the top level"),
    ("empty.json", "", "not valid JSON"),
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("command", ["run", "simulate"])
@pytest.mark.parametrize(("name", "text", "expected"), REPRODUCERS, ids=[r[0] for r in REPRODUCERS])
def test_each_reproducer_exits_2_with_one_line_naming_the_field(
    tmp_path: Path, command: str, name: str, text: str, expected: str
) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    line = one_line_error(invoke(command, name, "--quiet"))
    assert line.startswith(f"error: {name}: ") and expected in line


@pytest.mark.timeout(20)
@pytest.mark.parametrize("command", ["run", "simulate"])
def test_non_utf8_files_directories_and_missing_files_exit_2(tmp_path: Path, command: str) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    (tmp_path / "dir.yaml").mkdir()
    assert "not UTF-8 text" in one_line_error(invoke(command, "bin.yaml", "-q"))
    assert "is a directory" in one_line_error(invoke(command, "dir.yaml", "-q"))
    assert "no such file" in one_line_error(invoke(command, "gone.yaml", "-q"))


@pytest.mark.timeout(20)
@pytest.mark.parametrize("command", ["run", "simulate"])
def test_a_deep_config_option_exits_2_naming_the_option(tmp_path: Path, command: str) -> None:
    (tmp_path / "w.yaml").write_text(VALID, encoding="utf-8")
    line = one_line_error(invoke(command, "w.yaml", "-q", "--config", "[" * 5000))
    assert line.startswith("error: --config: line 1:") and "nested deeper than 64" in line


@pytest.mark.timeout(20)
def test_a_deep_config_file_exits_2_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(VALID, encoding="utf-8")
    (tmp_path / "swarmbalancer.json").write_text('{"a": ' + "[" * 5000 + "]" * 5000 + "}")
    line = one_line_error(invoke("simulate", "w.yaml", "-q"))
    assert line.startswith("error: swarmbalancer.json: line 1: a[0]")


def test_a_config_value_with_a_newline_still_gives_one_line(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(VALID, encoding="utf-8")
    line = one_line_error(invoke("simulate", "w.yaml", "-c", '{"tenantWeights": {"a\\nb": -1}}'))
    assert "tenantWeights" in line


@pytest.mark.timeout(30)
def test_handler_modules_are_found_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "myhandlers_cwd.py").write_text(
        "def double(task):\n    return task.payload['work'] * 2\n", encoding="utf-8"
    )
    (tmp_path / "w.yaml").write_text(VALID, encoding="utf-8")
    result = invoke("run", "w.yaml", "--json", "--handler", "myhandlers_cwd:double")
    assert result.exit_code == 0, result.output
    assert '"completed": 3' in result.stdout


def test_a_handler_module_that_raises_on_import_exits_2(tmp_path: Path) -> None:
    (tmp_path / "broken_handlers.py").write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    (tmp_path / "w.yaml").write_text(VALID, encoding="utf-8")
    line = one_line_error(invoke("run", "w.yaml", "-q", "--handler", "broken_handlers:f"))
    assert "--handler" in line and "RuntimeError: boom" in line
