"""`swarmbalancer worker` refuses bad input before joining: one line naming the option."""

from __future__ import annotations

from pathlib import Path

import pytest

from clihelpers import invoke, one_line_error
from redisserver import free_port

pytestmark = pytest.mark.timeout(30)
HANDLERS = Path(__file__).parent
BASE = ("--store", "redis://127.0.0.1:1/0", "--swarm-id", "s1", "--capacity", "2")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--handler", "no_such_module_x:f"), "--handler: cannot load 'no_such_module_x:f'"),
        (("--handler", "edge_handlers"), "--handler: 'edge_handlers' is not of the form"),
        (("--handler", "edge_handlers:not_callable"), "is not callable"),
        (("--handler", "edge_handlers:missing"), "--handler: cannot load"),
        (("--handler", "edge_handlers:plain_handler", "--capacity", "0"), "--capacity: must be"),
        (("--handler", "edge_handlers:plain_handler", "--capacity", "5000"), "--capacity:"),
        (("--handler", "edge_handlers:plain_handler", "--heartbeat", "0"), "--heartbeat:"),
        (("--handler", "edge_handlers:plain_handler", "--weight", "-1"), "--weight:"),
        (("--handler", "edge_handlers:plain_handler", "--speed-hint", "0"), "--speed-hint:"),
        (("--handler", "edge_handlers:plain_handler", "--id", "a b"), "--id: 'a b' must be"),
        (("--handler", "edge_handlers:plain_handler", "--region", ""), "--region:"),
        (("--handler", "edge_handlers:plain_handler", "--store", "http://x"), "store: 'http://x'"),
    ],
)
def test_bad_options_exit_2_with_one_line_naming_the_option(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], expected: str
) -> None:
    monkeypatch.chdir(HANDLERS)
    line = one_line_error(invoke("worker", *BASE, *args))
    assert expected in line


def test_a_capacity_that_is_not_a_number_is_refused_naming_the_option() -> None:
    result = invoke("worker", *BASE, "--handler", "m:f", "--capacity", "many")
    assert result.exit_code == 2 and "--capacity" in result.output


def test_a_swarm_id_that_differs_from_the_urls_is_named() -> None:
    args = ("--store", "redis://127.0.0.1:1/0?swarm=a", "--capacity", "1", "--handler", "m:f")
    error = one_line_error(invoke("worker", *args, "--swarm-id", "b"))
    assert "swarm_id: 'b' differs from the URL's swarm='a'" in error


def test_a_store_nobody_answers_at_is_one_line_naming_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(HANDLERS)
    url = f"redis://127.0.0.1:{free_port()}/0"
    args = ("--store", url, "--swarm-id", "s1", "--capacity", "1")
    line = one_line_error(invoke("worker", *args, "--handler", "edge_handlers:plain_handler"))
    assert line.startswith("error: --store: cannot reach redis")
