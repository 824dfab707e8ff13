"""Fuzzing the configuration surfaces: `load_config` (dicts and JSON text) and `Balancer(config)`
raise only `ConfigError`, in one line, whatever they are given."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given

from fuzz.strategies import TIME_LIMIT, configs, fuzz_settings, raw_texts
from swarmbalancer import Balancer
from swarmbalancer.config import load_config
from swarmbalancer.errors import ConfigError


def accepted(build: Any, source: Any) -> bool:
    try:
        build(source)
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)
        return False
    return True


@pytest.mark.timeout(TIME_LIMIT)
@fuzz_settings(400)
@given(source=configs())
def test_load_config_accepts_or_raises_config_error(source: Any) -> None:
    if accepted(load_config, source):
        assert load_config(load_config(source).to_dict()) == load_config(source)


@pytest.mark.timeout(TIME_LIMIT)
@fuzz_settings(200)
@given(source=configs())
def test_balancer_accepts_the_configs_load_config_accepts(source: Any) -> None:
    assert accepted(Balancer, source) == accepted(load_config, source)


@pytest.mark.timeout(TIME_LIMIT)
@fuzz_settings(200)
@given(text=raw_texts())
def test_config_text_parses_or_raises_config_error(text: str) -> None:
    accepted(load_config, text)


@pytest.mark.timeout(TIME_LIMIT)
@fuzz_settings(200)
@given(source=configs())
def test_config_as_json_text_behaves_as_the_object(source: Any) -> None:
    try:
        text = json.dumps(source)
    except (TypeError, ValueError):  # keys json cannot write: nothing to compare
        return
    if not isinstance(source, dict) or not all(isinstance(k, str) for k in source):
        return  # None means the defaults; json.dumps turns 1 into "1": other objects
    assert accepted(load_config, text) == accepted(load_config, source)
