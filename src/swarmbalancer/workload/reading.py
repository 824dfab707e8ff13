"""Read a workload document (YAML or JSON) into plain data, with one-line errors.

YAML is read with YAML 1.2 scalars where 1.1 surprises: only `true`/`false` are booleans (so the
bursty keys `on:`/`off:` stay keys) and `5e-3` is a number; a key given twice is an error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from swarmbalancer.errors import WorkloadError

SUFFIXES = (".yaml", ".yml", ".json")


def read_document(path: Path) -> Any:
    """The parsed content of a .yaml, .yml or .json file; errors start with the file name."""
    source = path.name
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise WorkloadError(
            f"{source}: unknown format {suffix or '(no extension)'!r}; use .yaml, .yml or .json"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkloadError(f"{source}: no such file ({path})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkloadError(f"{source}: cannot read ({exc})") from None
    return _parse_json(text, source) if suffix == ".json" else _parse_yaml(text, source)


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkloadError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and exponents, and no duplicate keys.

    YAML 1.1 would read the bursty keys `on:`/`off:` as booleans and `5e-3` as a string; a repeated
    key would silently replace the first.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YAML12_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_Loader.add_implicit_resolver(_BOOL, _YAML12_BOOL, list("tTfF"))
# YAML 1.1 reads `5e-3` (no dot) as a string; YAML 1.2 and JSON read it as a number.
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))


def _parse_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: safe
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise WorkloadError(f"{source}: not valid YAML ({where}{exc.problem})") from None
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{source}: not valid YAML ({exc})") from None
