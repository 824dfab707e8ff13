"""Where the CLI's configuration comes from, and how `config-manage` changes its file.

Layers, later ones winning: defaults, config file, workload, `--config`, flags. The file is read
within the bounds of `swarmbalancer.documents` and validated by `load_config`, as `Balancer` does.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from swarmbalancer.config import BalancerConfig, camel_keys, canonical_key, load_config
from swarmbalancer.documents import DocumentError, loads_json, read_text
from swarmbalancer.errors import ConfigError

DEFAULT_FILE = Path("swarmbalancer.json")


def read_file(path: Path) -> dict[str, Any]:
    """The keys stored in a config file, validated; an absent file stores none."""
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        data = loads_json(read_text(path))
    except DocumentError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    try:
        load_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return data


def parse_json_option(text: str | None, option: str = "--config") -> dict[str, Any]:
    """A `--config` value: a JSON object, named in errors as the option."""
    if not text:
        return {}
    try:
        data = loads_json(text)
    except DocumentError as exc:
        raise ConfigError(f"{option}: {exc}") from None
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


def update_file(path: Path, changes: dict[str, Any]) -> list[str]:
    """Set `changes` in the file, whichever spelling either side used (an update in snake_case
    replaces the camelCase key); returns the keys set, in camelCase."""
    try:
        updates = camel_keys(changes)
    except ConfigError as exc:
        raise ConfigError(f"--config: {exc}") from None
    _write(path, {**camel_keys(read_file(path)), **updates})
    return sorted(updates)


def unset_keys(path: Path, keys: list[str]) -> list[str]:
    """Remove `keys` (either spelling) from the file; returns those that were set, in camelCase."""
    known = {field.alias or name for name, field in BalancerConfig.model_fields.items()}
    wanted = []
    for key in keys:
        camel = canonical_key(key)
        if camel not in known:
            raise ConfigError(f"--key: {key}: unknown key")
        wanted.append(camel)
    stored = camel_keys(read_file(path))
    removed = [key for key in dict.fromkeys(wanted) if key in stored]
    if removed:
        _write(path, {k: v for k, v in stored.items() if k not in removed})
    return removed


def _write(path: Path, data: dict[str, Any]) -> None:
    """Validate `data` as `Balancer` would, then replace the file in one step (never half
    written)."""
    try:
        load_config(data)
    except ConfigError as exc:
        raise ConfigError(f"--config: the file would become invalid: {exc}") from None
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write ({exc.strerror or exc})") from None
