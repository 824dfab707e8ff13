"""Untrusted documents are read within bounds: depth, size, integer length, duplicate keys, NUL
bytes and encodings each give one `DocumentError` line saying where, without recursion."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from swarmbalancer.documents import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    DocumentError,
    loads_json,
    read_text,
)


@pytest.mark.timeout(10)
def test_json_nested_far_deeper_than_the_recursion_limit_is_refused_with_its_path() -> None:
    depth = sys.getrecursionlimit() * 10
    text = '{"agents": ' + "[" * depth + "]" * depth + "}"
    with pytest.raises(
        DocumentError, match=rf"^line 1: agents\[0\].*nested deeper than {MAX_DEPTH}"
    ):
        loads_json(text)


def test_json_at_the_depth_limit_is_read() -> None:
    assert loads_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert loads_json('{"a": "' + "[" * 500 + '"}') == {"a": "[" * 500}


def test_a_json_key_given_twice_is_named_with_its_object_and_line() -> None:
    with pytest.raises(DocumentError, match=r"^line 2: agents\[1\]: key 'id' is given twice$"):
        loads_json('{"agents": [{"id": "a"},\n {"id": "b", "id": "c"}]}')


def test_an_integer_of_thousands_of_digits_is_named_by_its_path() -> None:
    with pytest.raises(DocumentError, match=r"^tasks\.count: an integer of 5000 digits"):
        loads_json('{"tasks": {"count": ' + "9" * 5000 + "}}")


def test_integers_up_to_the_digit_limit_are_read() -> None:
    assert loads_json("9" * MAX_INT_DIGITS) == int("9" * MAX_INT_DIGITS)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    with pytest.raises(DocumentError, match="is not a JSON number"):
        loads_json(f'{{"a": {constant}}}')


def test_a_lone_surrogate_escape_is_refused() -> None:
    with pytest.raises(DocumentError, match=r"^a: contains a lone UTF-16 surrogate"):
        loads_json('{"a": "\\ud800"}')


def test_a_surrogate_pair_escape_is_ordinary_text() -> None:
    assert loads_json('"\\ud83d\\ude00"') == "\U0001f600"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a: 1\n\x00", r"^line 2: NUL byte"),
        (b"a: 1\n\xff\xfe", r"^line 2: not UTF-8 text \(byte 0xff\)"),
    ],
)
def test_binary_content_is_refused_in_one_line(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    with pytest.raises(DocumentError, match=expected) as info:
        read_text(path)
    assert "\n" not in str(info.value)


def test_a_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[" + "1," * 100 + "1]", encoding="utf-8")
    with pytest.raises(DocumentError, match="larger than the limit of 100 bytes"):
        read_text(path, limit=100)


def test_a_directory_or_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="is a directory"):
        read_text(tmp_path)
    with pytest.raises(DocumentError, match="no such file"):
        read_text(tmp_path / "absent.json")


def test_a_utf8_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"\xef\xbb\xbf{}")
    assert loads_json(read_text(path)) == {}
