"""A batch of JSON entries is decoded whole, and a bad entry costs only itself."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmbalancer.cluster.entries import decode_objects

_OBJECTS = st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3)
_JUNK = st.sampled_from([b"", b"{", b"[1]", b"7", b'"x"', b'{"a":1},{"b":2}', b"\xff"])


@given(st.lists(st.tuples(st.booleans(), _OBJECTS, _JUNK), max_size=12))
def test_every_object_comes_back_in_order_and_nothing_else(
    items: list[tuple[bool, dict[str, object], bytes]],
) -> None:
    raws = [json.dumps(obj).encode() if good else junk for good, obj, junk in items]
    expected = [obj for good, obj, _ in items if good]
    assert decode_objects(raws, "test") == expected


def test_a_skipped_entry_is_logged_naming_its_list(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="swarmbalancer.cluster"):
        assert decode_objects([b'{"id":1}', b"[2]", b'{"id":3}'], "reply:c1") == [
            {"id": 1},
            {"id": 3},
        ]
    assert "reply:c1: skipped an entry that is not a JSON object: b'[2]'" in caplog.text
