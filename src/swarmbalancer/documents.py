"""Untrusted documents (workload files, configuration files, `--config` text) read within
documented bounds, so that a hostile or broken input gives one clear error naming where it is wrong
instead of a crash: size, nesting depth, integer length, keys given twice, NUL bytes, non-UTF-8.

The bounds are documented in docs/workloads.md ("Limits"); no recursion limit is relied upon: the
nesting depth of JSON is measured by a scan of the text before `json.loads` builds anything.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

from swarmbalancer.errors import SwarmBalancerError

#: Largest document read, in bytes: far above any hand-written workload or configuration.
MAX_BYTES = 16 * 1024 * 1024
#: Deepest nesting of lists and mappings: the formats need 4 levels; 64 leaves room for any tool.
MAX_DEPTH = 64
#: Longest integer literal, in digits: no field takes more than 20 (a 64-bit seed).
MAX_INT_DIGITS = 64


class DocumentError(SwarmBalancerError, ValueError):
    """A document is unreadable or exceeds a bound; the message says where (callers prefix the
    file or option name)."""


def format_path(parts: list[str | int]) -> str:
    """`["faults", 0, "agent"]` -> `faults[0].agent`."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def brief_path(parts: list[str | int]) -> str:
    """`format_path`, with the middle of a path of more than 8 steps elided."""
    if len(parts) <= 8:
        return format_path(parts)
    return f"{format_path(parts[:4])}...{format_path(parts[-2:])} ({len(parts)} levels)"


def read_text(path: Path, limit: int = MAX_BYTES) -> str:
    """The UTF-8 text of a file of at most `limit` bytes (a leading BOM is dropped)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO or device could block or never end
            problem = "is a directory, not a file" if path.is_dir() else "is not a regular file"
            raise DocumentError(f"{problem} ({path})")
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except FileNotFoundError:
        raise DocumentError(f"no such file ({path})") from None
    except OSError as exc:
        raise DocumentError(f"cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise DocumentError(f"larger than the limit of {limit:,} bytes")
    return decode(data)


def decode(data: bytes) -> str:
    """Strict UTF-8 text without NUL bytes; the error gives the line of the first bad byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DocumentError(
            f"line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise DocumentError(f"line {text.count(chr(10), 0, nul) + 1}: NUL byte; not a text file")
    return text


class _TooLong:
    """Stands for an integer literal longer than `MAX_INT_DIGITS` until its path is known."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _parse_constant(name: str) -> float:
    raise DocumentError(f"{name} is not a JSON number; give a finite number")


class _DuplicateKey(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey
    return result


def loads_json(text: str) -> Any:
    """Parse JSON text: nesting at most `MAX_DEPTH`, no key twice in an object, integers of at
    most `MAX_INT_DIGITS` digits, no NaN or Infinity. Errors name the line and the key path."""
    if "\x00" in text:
        raise DocumentError(f"line {text.count(chr(10), 0, text.find(chr(0))) + 1}: NUL byte")
    if text.count("[") + text.count("{") > MAX_DEPTH:
        _scan(text)  # only text with that many brackets can nest too deep
    too_long = False

    def parse_int(literal: str) -> int | _TooLong:
        nonlocal too_long
        digits = len(literal) - literal.startswith("-")
        if digits <= MAX_INT_DIGITS:
            return int(literal)
        too_long = True
        return _TooLong(digits)

    try:
        data = json.loads(
            text,
            object_pairs_hook=_unique_pairs,
            parse_int=parse_int,
            parse_constant=_parse_constant,
        )
    except json.JSONDecodeError as exc:
        raise DocumentError(
            f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except _DuplicateKey:
        _scan(text)
        raise DocumentError("a key is given twice") from None  # _scan names it; kept as a guard
    if too_long or _MAYBE_SURROGATE.search(text):
        check_tree(data)
    return data


_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"?|[\[\]{},:]')


def _scan(text: str) -> None:
    """Walk the structural tokens of JSON text; raise at the first container nested deeper than
    `MAX_DEPTH` or key given twice, naming its line and path. Linear in the text, no recursion."""
    # One frame per open container: [is_object, keys seen, current step (key or index), want_key]
    stack: list[list[Any]] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        first = token[0]
        frame = stack[-1] if stack else None
        if first == '"':
            if frame is not None and frame[0] and frame[3]:
                key = _key(token)
                if key in frame[1]:
                    raise DocumentError(
                        f"{_where(text, match.start(), stack[:-1])}key {key!r} is given twice"
                    )
                frame[1].add(key)
                frame[2], frame[3] = key, False
        elif first in "[{":
            if len(stack) >= MAX_DEPTH:
                raise DocumentError(
                    f"{_where(text, match.start(), stack)}nested deeper than {MAX_DEPTH} levels"
                )
            stack.append([first == "{", set(), 0, first == "{"])
        elif first in "]}":
            if stack:
                stack.pop()
        elif first == "," and frame is not None:
            if frame[0]:
                frame[3] = True
            else:
                frame[2] += 1


def _key(token: str) -> str:
    if "\\" not in token:
        return token[1:-1]
    try:
        return str(json.loads(token))
    except json.JSONDecodeError:  # an unterminated or malformed string: json.loads reports it
        return token[1:]


def _where(text: str, pos: int, stack: list[list[Any]]) -> str:
    line = text.count("\n", 0, pos) + 1
    path = brief_path([frame[2] for frame in stack])
    return f"line {line}: {path}: " if path else f"line {line}: "


def check_tree(data: Any) -> None:
    """Raise for an over-long integer or a string with a lone surrogate anywhere in parsed data,
    naming its path. `data` must already be depth-bounded (its recursion is at most MAX_DEPTH)."""
    problem = _find(data, [])
    if problem is not None:
        steps, message = problem
        path = format_path(steps)
        raise DocumentError(f"{path}: {message}" if path else message)


def _find(node: Any, steps: list[str | int]) -> tuple[list[str | int], str] | None:
    if isinstance(node, _TooLong):
        return steps, f"an integer of {node.digits} digits; at most {MAX_INT_DIGITS} are accepted"
    if isinstance(node, str):
        if not node.isascii() and _SURROGATE.search(node):
            return steps, "contains a lone UTF-16 surrogate (\\ud800-\\udfff); not valid text"
        return None
    if isinstance(node, dict):
        for key, value in node.items():
            found = _find(key, steps) or _find(value, [*steps, str(key)])
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found = _find(value, [*steps, i])
            if found is not None:
                return found
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")
_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
