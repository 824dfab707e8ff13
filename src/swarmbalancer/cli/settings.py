"""Where the CLI's configuration comes from.

Layers, later ones winning: defaults, config file, workload, `--config`, flags.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swarmbalancer.config import BalancerConfig, load_config
from swarmbalancer.errors import ConfigError

DEFAULT_FILE = Path("swarmbalancer.json")


def read_file(path: Path) -> dict[str, Any]:
    """The keys stored in a config file; an absent file stores none."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    load_config(data)
    return data


def parse_json_option(text: str | None, option: str = "--config") -> dict[str, Any]:
    """A `--config` value: a JSON object, named in errors as the option."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{option}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f'{option}: expected a JSON object such as \'{{"strategy": "adaptive"}}\''
        )
    return data


def effective_config(*layers: dict[str, Any]) -> BalancerConfig:
    """Merge layers, later ones winning, and validate the result once."""
    config = load_config({})
    for layer in layers:
        if layer:
            config = config.updated(layer)
    return config
