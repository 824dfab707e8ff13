"""Read a workload document (YAML or JSON) into plain data, with one-line errors.

YAML is read with YAML 1.2 scalars where 1.1 surprises: only `true`/`false` are booleans (so the
bursty keys `on:`/`off:` stay keys) and `5e-3` is a number; a key given twice is an error, in JSON
too. Both are read within the bounds of `swarmbalancer.documents` (size, nesting depth, integer
length); YAML aliases may not expand the document beyond `MAX_NODES` nodes or refer to themselves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from swarmbalancer.documents import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    DocumentError,
    brief_path,
    check_tree,
    loads_json,
    read_text,
)
from swarmbalancer.errors import WorkloadError

SUFFIXES = (".yaml", ".yml", ".json")
#: Most nodes a YAML document may hold once its aliases are expanded (ten per agent at the agent
#: limit); it stops "billion laughs" documents whose aliases multiply a few lines into billions.
MAX_NODES = 1_000_000

_INT = "tag:yaml.org,2002:int"


def read_document(path: Path) -> Any:
    """The parsed content of a .yaml, .yml or .json file; errors start with the file name."""
    source = path.name
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise WorkloadError(
            f"{source}: unknown format {suffix or '(no extension)'!r}; use .yaml, .yml or .json"
        )
    try:
        text = read_text(path)
        return loads_json(text) if suffix == ".json" else _parse_yaml(text, source)
    except DocumentError as exc:
        raise WorkloadError(f"{source}: {exc}") from None


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and exponents, no duplicate keys, and bounds.

    YAML 1.1 would read the bursty keys `on:`/`off:` as booleans and `5e-3` as a string; a repeated
    key would silently replace the first. The composer is bounded before any object is built:
    nesting depth, integer length, alias expansion and self-referring aliases.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._steps: list[str | int] = []
        self._depth = 0
        self._open_anchors: set[str] = set()
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            anchor = self._peek().anchor
            if anchor in self._open_anchors:
                self._fail(f"alias *{anchor} refers to a node that contains it")
            return super().compose_node(parent, index)
        self._steps.append(_step(parent, index))
        collection = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        anchor = self._peek().anchor if collection else None
        if collection:
            if self._depth >= MAX_DEPTH:
                self._fail(f"nested deeper than {MAX_DEPTH} levels")
            self._depth += 1
            if anchor is not None:
                self._open_anchors.add(anchor)
        node = super().compose_node(parent, index)
        if collection:
            self._depth -= 1
            self._open_anchors.discard(anchor or "")
        if node is not None:
            self._measure(node)
        self._steps.pop()
        return node

    def _peek(self) -> Any:
        return self.peek_event()  # type: ignore[no-untyped-call]

    def _measure(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.ScalarNode):
            size = 1
            if node.tag == _INT and len(node.value) > MAX_INT_DIGITS + 3:  # sign and 0x prefix
                self._fail(
                    f"an integer of {len(node.value)} digits; at most {MAX_INT_DIGITS}", node
                )
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes.get(id(child), 1) for child in node.value)
        else:
            size = 1 + sum(
                self._sizes.get(id(k), 1) + self._sizes.get(id(v), 1) for k, v in node.value
            )
        if size > MAX_NODES:
            self._fail(f"more than {MAX_NODES:,} nodes once aliases are expanded", node)
        self._sizes[id(node)] = size

    def _fail(self, problem: str, node: yaml.Node | None = None) -> None:
        path = brief_path([s for s in self._steps if s != ""])
        mark = node.start_mark if node is not None else self._peek().start_mark
        raise yaml.composer.ComposerError(
            None, None, f"{path}: {problem}" if path else problem, mark
        )

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            tag = node.tag.rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                None, None, f"{_short(node.value)} is not a valid {tag}", node.start_mark
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {_short(key)} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _step(parent: yaml.Node | None, index: Any) -> str | int:
    if isinstance(index, int) and not isinstance(index, bool):
        return index
    if isinstance(index, yaml.ScalarNode):
        return str(index.value)
    return ""  # the document itself, or a mapping key


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, list) else "a collection"
    return text if len(text) <= 40 else text[:37] + "..."


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
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: safe
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = " ".join(str(exc.problem).split())
        raise WorkloadError(f"{source}: not valid YAML ({where}{problem})") from None
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{source}: not valid YAML ({' '.join(str(exc).split())})") from None
    check_tree(data)
    return data
