"""Fuzzing the command line through typer's CliRunner: `simulate` with fuzzed workload files and
`--config` text, and sequences of `config-manage` commands. Every run exits 0, or 2 with exactly
one line on stderr; no exception escapes; and `config-manage` never leaves a file that a later
command (or `Balancer`) refuses."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from fuzz.strategies import (
    CONFIG_KEYS,
    JUNK,
    TIME_LIMIT,
    configs,
    fuzz_settings,
    raw_texts,
    serialise,
    workloads,
)
from swarmbalancer import Balancer
from swarmbalancer.cli.app import app
from swarmbalancer.cli.settings import read_file


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh working directory (no stray swarmbalancer.json), restored afterwards."""
    before = os.getcwd()
    with tempfile.TemporaryDirectory() as directory:
        os.chdir(directory)
        try:
            yield Path(directory)
        finally:
            os.chdir(before)


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code in (0, 2), (result.exit_code, result.output)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result


@pytest.mark.timeout(TIME_LIMIT)
@fuzz_settings(40)
@given(data=workloads(tame=True), as_json=st.booleans())
def test_simulate_on_fuzzed_workloads_exits_0_or_2_with_one_line(data: Any, as_json: bool) -> None:
    with scratch() as directory:
        path = directory / ("w.json" if as_json else "w.yaml")
        path.write_text(serialise(data, as_json), encoding="utf-8")
        result = invoke("simulate", str(path), "--json", "--quiet")
        if result.exit_code == 0:
            report = json.loads(result.stdout)
            assert report["lost"] == 0


@pytest.mark.timeout(TIME_LIMIT)
@fuzz_settings(60)
@given(text=st.one_of(raw_texts(), configs().map(json.dumps)))
def test_config_option_text_exits_0_or_2_with_one_line(text: str) -> None:
    with scratch():
        invoke("config-manage", "--action", "get", "--config", text)


ACTIONS = st.one_of(
    st.tuples(st.just("update"), configs().map(lambda c: json.dumps(c, default=str))),
    st.tuples(
        st.just("update"),
        st.dictionaries(st.sampled_from(CONFIG_KEYS), JUNK, max_size=2).map(
            lambda c: json.dumps(c, default=str)
        ),
    ),
    st.tuples(st.just("unset"), st.one_of(st.sampled_from(CONFIG_KEYS), st.text(max_size=6))),
    st.tuples(st.just("validate"), st.just("")),
    st.tuples(st.just("get"), st.just("")),
)


@pytest.mark.timeout(TIME_LIMIT)
@fuzz_settings(40)
@given(steps=st.lists(ACTIONS, min_size=1, max_size=6))
def test_config_manage_never_writes_a_file_later_commands_refuse(
    steps: list[tuple[str, str]],
) -> None:
    with scratch() as directory:
        for action, argument in steps:
            args = ["config-manage", "--action", action]
            if action == "update":
                args += ["--config", argument]
            elif action == "unset":
                args += ["--key", argument]
            invoke(*args)
            file = directory / "swarmbalancer.json"
            if file.exists():
                stored = read_file(file)  # raises if a later command would refuse it
                Balancer(stored)
                assert invoke("config-manage", "--action", "validate").exit_code == 0
