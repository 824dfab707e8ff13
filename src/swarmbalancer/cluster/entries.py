"""Batches of JSON objects taken off a Redis list in one call (replies, taken outcomes and
events): decoded with one `json.loads` of the whole batch as an array, and entry by entry only
when that fails, so a malformed entry is skipped (and logged) without losing its neighbours."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("swarmbalancer.cluster")


def decode_objects(raws: Sequence[bytes], where: str) -> list[dict[str, Any]]:
    """The JSON objects among `raws`, in order; an entry that is not one is skipped with a
    warning naming `where` (the list it came from)."""
    try:
        entries = json.loads(b"[" + b",".join(raws) + b"]")
        if len(entries) == len(raws) and all(type(entry) is dict for entry in entries):
            return entries  # type: ignore[no-any-return]
    except ValueError:
        pass
    out: list[dict[str, Any]] = []
    for raw in raws:
        try:
            entry = json.loads(raw)
        except ValueError:
            entry = None
        if type(entry) is dict:
            out.append(entry)
        else:
            log.warning("%s: skipped an entry that is not a JSON object: %.80r", where, raw)
    return out
