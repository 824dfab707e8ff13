"""Turn a pydantic `ValidationError` into one line that names the field path.

Paths are written as users wrote the file (`faults[0].agent`, `tasks.work.alpha`): union tags that
pydantic inserts into error locations are dropped by walking the input data alongside the location.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from swarmbalancer.documents import format_path

__all__ = ["describe", "format_path", "shown"]

_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def describe(exc: ValidationError, data: Any) -> str:
    """The first error as `path: problem`, plus a count of any further errors."""
    errors = exc.errors()
    first = _line(errors[0], data)
    more = len(errors) - 1
    return first if more == 0 else f"{first} (and {more} more problem{'s' if more > 1 else ''})"


def _line(err: ErrorDetails, data: Any) -> str:
    parts = _user_path(err["loc"], data)
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "union_tag_invalid":
        parts.append(str(ctx.get("discriminator", "")).strip("'"))
        message = f"{ctx.get('tag')!r} is not one of {ctx.get('expected_tags')}"
    elif kind == "union_tag_not_found":
        parts.append(str(ctx.get("discriminator", "")).strip("'"))
        message = "required"
    else:
        message = _message(err)
    path = format_path(parts)
    return f"{path}: {message}" if path else message


def _user_path(loc: tuple[int | str, ...], data: Any) -> list[str | int]:
    """Keep the location steps present in `data`; drop union tags, keep a final missing key."""
    parts: list[str | int] = []
    node = data
    for i, step in enumerate(loc):
        if isinstance(step, str) and step.startswith("~"):
            continue
        if _has(node, step):
            node = node[step]
            parts.append(step)
        elif i == len(loc) - 1:
            parts.append(step)
    return parts


def _has(node: Any, step: int | str) -> bool:
    if isinstance(node, dict):
        return step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def _message(err: ErrorDetails) -> str:
    kind, ctx, msg = err["type"], err.get("ctx") or {}, err["msg"]
    got = err.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        return f"must be {op} {_number(ctx.get(key))}, got {shown(got)}"
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        return f"must be {msg.removeprefix('Input should be ')}, got {shown(got)}"
    return msg


def shown(value: Any, limit: int = 60) -> str:
    """A value as it appears in an error line: its repr, shortened; a huge integer by its size."""
    if isinstance(value, int) and value.bit_length() > 200:
        return f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    try:
        text = repr(value)
    except ValueError:  # a container holding an integer too long to print
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _number(value: Any) -> Any:
    """`1.0` -> `1`, so bounds read as the user wrote them."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
