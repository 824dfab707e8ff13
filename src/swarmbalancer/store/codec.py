"""Payloads and results on disk: JSON only (never pickle), with a size limit checked at submit."""

from __future__ import annotations

import json
from typing import Any

from swarmbalancer.errors import TaskRejected

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_string = json.encoder.encode_basestring_ascii


def encode_payload(payload: Any, limit: int) -> str:
    """The payload as compact JSON, or TaskRejected naming `payload` when it is not JSON (or
    holds NaN/infinity) or its JSON is longer than `limit` bytes."""
    kind = type(payload)
    if payload is None:
        text = "null"
    elif kind is int:  # the encoder's own text for these, without its call
        text = int.__repr__(payload)
    elif kind is str:
        text = _string(payload)
    else:
        try:
            text = _encode(payload)
        except (TypeError, ValueError) as exc:
            raise TaskRejected(f"payload: not JSON-serialisable ({exc})") from None
    if len(text) > limit:  # ensure_ascii: one byte per character
        raise TaskRejected(f"payload: {len(text)} bytes of JSON exceed maxPayloadBytes ({limit})")
    return text


def encode_result(result: Any) -> tuple[str | None, str | None]:
    """A handler's result as JSON, or (None, why) when it cannot be stored as JSON."""
    kind = type(result)
    if result is None:
        return "null", None
    if kind is int:  # what the encoder writes for these, without its per-call set-up
        return int.__repr__(result), None
    if kind is str:
        return _string(result), None
    try:
        return _encode(result), None
    except (TypeError, ValueError) as exc:
        return None, f"result not stored: not JSON-serialisable ({exc})"


def decode(text: str | None) -> Any:
    """JSON text back to a value; NULL is None."""
    return None if text is None else json.loads(text)


def encode_names(names: frozenset[str] | tuple[str, ...] | None) -> str | None:
    """A set or sequence of agent ids or regions as a JSON list (NULL when none)."""
    if not names:
        return None
    return _encode(sorted(names) if isinstance(names, frozenset) else list(names))
