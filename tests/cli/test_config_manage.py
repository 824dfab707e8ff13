"""`config-manage`: rejects what `Balancer` rejects, writes only files later commands accept
(camelCase, whichever spelling an update used), and removes keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clihelpers import invoke, one_line_error
from swarmbalancer import Balancer
from swarmbalancer.errors import ConfigError

FILE = "swarmbalancer.json"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def stored(tmp_path: Path) -> dict[str, object]:
    return dict(json.loads((tmp_path / FILE).read_text(encoding="utf-8")))


def test_a_key_in_both_spellings_is_refused_as_balancer_refuses_it(tmp_path: Path) -> None:
    both = {"stealThreshold": 1, "steal_threshold": 2}
    with pytest.raises(ConfigError, match="given twice"):
        Balancer(both)
    for action in ("update", "validate", "get"):
        line = one_line_error(invoke("config-manage", "--action", action, "-c", json.dumps(both)))
        assert "given twice" in line
    assert not (tmp_path / FILE).exists()


def test_an_update_in_the_other_spelling_replaces_the_key(tmp_path: Path) -> None:
    assert (
        invoke("config-manage", "--action", "update", "-c", '{"stealThreshold": 3}').exit_code == 0
    )
    assert (
        invoke("config-manage", "--action", "update", "-c", '{"steal_threshold": 7}').exit_code == 0
    )
    assert stored(tmp_path) == {"stealThreshold": 7}
    assert invoke("config-manage", "--action", "validate").exit_code == 0
    assert Balancer(stored(tmp_path)).config.steal_threshold == 7


def test_a_hand_written_file_in_snake_case_is_rewritten_in_camel_case(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text('{"max_retries": 1}', encoding="utf-8")
    assert invoke("config-manage", "--action", "update", "-c", '{"maxRetries": 4}').exit_code == 0
    assert stored(tmp_path) == {"maxRetries": 4}


def test_an_update_that_would_make_the_file_invalid_leaves_it_unchanged(tmp_path: Path) -> None:
    invoke(
        "config-manage", "--action", "update", "-c", '{"slidingWindowSize": 5, "minimumCalls": 5}'
    )
    line = one_line_error(
        invoke("config-manage", "--action", "update", "-c", '{"minimumCalls": 9}')
    )
    assert "minimumCalls must not exceed slidingWindowSize" in line
    assert stored(tmp_path) == {"minimumCalls": 5, "slidingWindowSize": 5}


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ('{"timeout": "1e999s"}', "timeout"),
        ('{"checkInterval": 1e-300}', "checkInterval"),
        ('{"threshold": 1e999}', "threshold"),
        ('{"seed": ' + "1" * 100 + "}", "seed: an integer of 100 digits"),
        ('{"strategy": "adaptive", "strategy": "random"}', "key 'strategy' is given twice"),
    ],
)
def test_values_balancer_would_refuse_are_never_written(
    tmp_path: Path, config: str, named: str
) -> None:
    assert named in one_line_error(invoke("config-manage", "--action", "update", "-c", config))
    assert not (tmp_path / FILE).exists()


def test_unset_removes_a_key_given_in_either_spelling(tmp_path: Path) -> None:
    invoke("config-manage", "--action", "update", "-c", '{"stealThreshold": 3, "maxRetries": 1}')
    result = invoke("config-manage", "--action", "unset", "--key", "steal_threshold")
    assert result.exit_code == 0 and "stealThreshold" in result.stderr
    assert stored(tmp_path) == {"maxRetries": 1}
    again = invoke("config-manage", "--action", "unset", "--key", "stealThreshold")
    assert again.exit_code == 0 and "nothing" in again.stderr


def test_unset_of_an_unknown_key_or_without_a_key_exits_2(tmp_path: Path) -> None:
    assert "--key: stealThresold: unknown key" in one_line_error(
        invoke("config-manage", "--action", "unset", "--key", "stealThresold")
    )
    assert "--key" in one_line_error(invoke("config-manage", "--action", "unset"))


def test_an_unknown_action_exits_2_listing_the_actions() -> None:
    line = one_line_error(invoke("config-manage", "--action", "frob"))
    assert "get, validate, update, unset" in line


def test_the_demo_reads_the_configuration_file(tmp_path: Path) -> None:
    (tmp_path / FILE).write_text('{"stealThresold": 3}', encoding="utf-8")
    line = one_line_error(invoke("demo", "--quiet"))
    assert line == "error: swarmbalancer.json: stealThresold: unknown key"
