"""Shared by the CLI tests: invoke the app and read its one-line errors."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from swarmbalancer.cli.app import app


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def one_line_error(result: Result) -> str:
    """The single stderr line of a run that exited with status 2."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
