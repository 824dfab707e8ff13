"""Workload files from hostile input: every reproducer of the fuzzing campaign (issue 10) is refused
with one `WorkloadError` line naming the file and the field, within a time limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmbalancer.errors import WorkloadError
from swarmbalancer.workload import load_workload
from swarmbalancer.workload.reading import MAX_NODES, read_document

VALID = "agents: [{id: a}]\ntasks: {count: 3, work: {dist: constant, value: 0.01}}\n"


def refused(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(WorkloadError) as info:
        load_workload(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{name}: ")
    return message


@pytest.mark.timeout(10)
def test_yaml_nested_500_deep_is_refused_naming_the_field(tmp_path: Path) -> None:
    message = refused(tmp_path, "w.yaml", VALID + "name: " + "[" * 500 + "]" * 500)
    assert "line 3: name[0][0]" in message and "nested deeper than 64 levels" in message


@pytest.mark.timeout(10)
def test_json_nested_500_deep_is_refused_naming_the_field(tmp_path: Path) -> None:
    text = '{"agents": [{"id": "a"}], "name": ' + "[" * 500 + "]" * 500 + "}"
    assert "name[0][0]" in refused(tmp_path, "w.json", text)


@pytest.mark.timeout(10)
def test_a_5000_digit_yaml_integer_is_refused_naming_the_field(tmp_path: Path) -> None:
    text = VALID.replace("count: 3", "count: " + "1" * 5000)
    assert "tasks.count: an integer of 5000 digits" in refused(tmp_path, "w.yaml", text)


@pytest.mark.timeout(10)
def test_a_5000_digit_hexadecimal_integer_is_refused_too(tmp_path: Path) -> None:
    text = VALID.replace("count: 3", "count: 0x" + "f" * 5000)
    assert "tasks.count: an integer of" in refused(tmp_path, "w.yaml", text)


@pytest.mark.timeout(10)
def test_a_nul_byte_gives_one_line(tmp_path: Path) -> None:
    assert (
        refused(tmp_path, "w.yaml", VALID + "\x00") == "w.yaml: line 3: NUL byte; not a text file"
    )


@pytest.mark.timeout(10)
def test_a_json_workload_rejects_duplicate_keys_as_yaml_does(tmp_path: Path) -> None:
    text = '{"agents": [{"id": "a"}], "seed": 1, "seed": 2}'
    assert refused(tmp_path, "w.json", text) == "w.json: line 1: key 'seed' is given twice"
    assert "key 'seed' is given twice" in refused(tmp_path, "w.yaml", VALID + "seed: 1\nseed: 2\n")


@pytest.mark.timeout(10)
def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    message = refused(tmp_path, "w.yaml", "\n".join(lines) + "\n")
    assert f"more than {MAX_NODES:,} nodes once aliases are expanded" in message


@pytest.mark.timeout(10)
def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    assert "alias *x refers to a node that contains it" in refused(
        tmp_path, "w.yaml", "a: &x [1, *x]\n"
    )


def test_merge_keys_and_ordinary_aliases_still_work(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("base: &base {capacity: 2}\n", encoding="utf-8")
    assert read_document(path) == {"base": {"capacity": 2}}
    path.write_text(
        "agents:\n  - &g {id: a, capacity: 2}\n  - {<<: *g, id: b}\n"
        "tasks: {count: 1, work: {dist: constant, value: 0.1}}\n",
        encoding="utf-8",
    )
    assert [g.capacity for g in load_workload(path).agents] == [2, 2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("count: !!int abc\n", "'abc' is not a valid int"),
        ("when: 2024-13-45\n", "'2024-13-45' is not a valid timestamp"),
        ("? [a]\n: 1\n", "found unhashable key"),
        ("a: !!python/object:os.system x\n", "could not determine a constructor"),
        ("a: 'x\x01'\n", "special characters are not allowed"),
    ],
)
def test_odd_yaml_scalars_are_refused_in_one_line(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in refused(tmp_path, "w.yaml", text)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("w.yaml", b"", "w.yaml: expected a mapping at the top level, got nothing"),
        ("w.json", b"", "w.json: not valid JSON (Expecting value at line 1, column 1)"),
        ("w.yaml", b"\xff\xfeagents", "w.yaml: line 1: not UTF-8 text (byte 0xff)"),
    ],
)
def test_empty_and_non_utf8_files_are_refused(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    assert refused(tmp_path, name, content).startswith(expected)


def test_a_directory_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(WorkloadError, match=r"^d\.yaml: is a directory"):
        load_workload(tmp_path / "d.yaml")
    with pytest.raises(WorkloadError, match=r"^m\.yaml: no such file"):
        load_workload(tmp_path / "m.yaml")
