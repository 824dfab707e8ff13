"""A task's row in Redis (`sb:{ID}:tasks`), one JSON object, written by a client's submit and
by the leader's flush and read back at takeover or by `result`.

Times in a row are Unix times, so any process can read them; payloads and results are JSON
values (never pickle). The field list is documented in docs/distributed.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from swarmbalancer.errors import TaskRejected
from swarmbalancer.model import Priority, Task
from swarmbalancer.store.codec import encode_payload
from swarmbalancer.store.record import RecordState, TaskRecord

_decode = json.loads
_PRIORITIES = tuple(sorted(Priority))  # indexed by value: 0 critical .. 4 background
_NORMAL = Priority.NORMAL
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


#: The first member of a row a client writes; submit.lua puts the real seq in its place.
SEQ_HEAD = '{"seq":0'


def new_row(task: Task, *, client: str | None, wall: float, max_payload_bytes: int) -> str:
    """The row (JSON text) of a task a client submits, `waiting`, seq 0 (submit.lua sets it):
    `SEQ_HEAD` then `row_tail`."""
    return SEQ_HEAD + row_tail(task, client=client, wall=wall, max_payload_bytes=max_payload_bytes)


def row_tail(task: Task, *, client: str | None, wall: float, max_payload_bytes: int) -> str:
    """A new row's text after its first member ({"seq":0), as a client sends it: it starts
    with ,"id": and the payload is its last member.

    `task` comes from `Task.create`, so it is validated as an embedded submit is; `wall` is the
    Unix time that `task.submitted_at` and `task.deadline` are relative to. A payload that is not
    JSON or is longer than `max_payload_bytes` is a TaskRejected naming `payload`.
    """
    payload = encode_payload(task.payload, max_payload_bytes)
    if (
        task.attempt == 0
        and task.priority is _NORMAL
        and task.tenant is None
        and task.deadline is None
        and task.estimate is None
        and task.affinity is None
        and task.region is None
        and task.idempotency_key is None
        and task.period is None
    ):  # a plain task: the text between its id and its payload is the same for the batch
        middle = _plain_middle(task.max_retries, wall, client)
        return f',"id":{_str(task.id)}{middle}{payload}}}'
    deadline, affinity = task.deadline, task.affinity
    names = "null" if affinity is None else "[" + ",".join(map(_str, sorted(affinity))) + "]"
    # Built by hand (a client's hot path: one per task), the fields in `json_row`'s order, each
    # written as the JSON encoder writes it (tests/cluster/test_rows.py checks they agree).
    return (
        f',"id":{_str(task.id)},"state":"waiting","attempt":{int(task.attempt)},'
        f'"priority":{int(task.priority)},"tenant":{_text(task.tenant)},'
        f'"deadline":{"null" if deadline is None else repr(deadline + (wall - task.submitted_at))},'
        f'"estimate":{_number(task.estimate)},"affinity":{names},"region":{_text(task.region)},'
        f'"key":{_text(task.idempotency_key)},"max_retries":{int(task.max_retries)},'
        f'"period":{_number(task.period)},"submitted_wall":{wall!r},'
        f'"result":null,"error":null,"finished_wall":null,"client":{_text(client)},'
        f'"payload":{payload}}}'
    )


_plain_cache: dict[tuple[int, float, str | None], str] = {}


def _plain_middle(max_retries: int, wall: float, client: str | None) -> str:
    """`row_tail`'s text from after a plain task's id up to its payload (kept for the last
    batch: its tasks share `wall`, `client` and, mostly, `max_retries`)."""
    key = (max_retries, wall, client)
    middle = _plain_cache.get(key)
    if middle is None:
        middle = (
            f',"state":"waiting","attempt":0,"priority":{int(_NORMAL)},"tenant":null,'
            '"deadline":null,"estimate":null,"affinity":null,"region":null,"key":null,'
            f'"max_retries":{int(max_retries)},"period":null,"submitted_wall":{wall!r},'
            f'"result":null,"error":null,"finished_wall":null,"client":{_text(client)},'
            '"payload":'
        )
        _plain_cache.clear()
        _plain_cache[key] = middle
    return middle


def json_row(task: Task, *, client: str | None, wall: float, payload: str) -> str:
    """`new_row` through the JSON encoder: the reference its hand-built text must equal."""
    shift = wall - task.submitted_at
    head = {
        "seq": 0,
        "id": task.id,
        "state": "waiting",
        "attempt": task.attempt,
        "priority": int(task.priority),
        "tenant": task.tenant,
        "deadline": None if task.deadline is None else task.deadline + shift,
        "estimate": task.estimate,
        "affinity": None if task.affinity is None else sorted(task.affinity),
        "region": task.region,
        "key": task.idempotency_key,
        "max_retries": task.max_retries,
        "period": task.period,
        "submitted_wall": wall,
        "result": None,
        "error": None,
        "finished_wall": None,
        "client": client,
    }
    text = _encode(head)
    # The payload is spliced in as already-encoded JSON, so it is encoded (and measured) once.
    return text[:-1] + ',"payload":' + payload + "}"


#: A row's fields as `leader_row` writes them, in their order (payload last); `new_row` writes
#: "seq" first.
ROW_FIELDS = (
    "id", "seq", "state", "attempt", "priority", "tenant", "deadline", "estimate", "affinity",
    "region", "key", "max_retries", "period", "submitted_wall", "result", "error",
    "finished_wall", "client", "payload",
)  # fmt: skip
_PAYLOAD = b',"payload":'


def payload_text(row: dict[str, Any], text: bytes) -> str | None:
    """The payload's JSON as a row's text holds it (sliced out, never decoded and encoded
    again), or None when the text is not of `new_row`'s shape (payload last). Raw JSON text
    holds `,"payload":` only where a key "payload" follows another member (a quote inside a
    string is escaped), so when the row's last key is "payload" and the text holds that once,
    it is the top-level key's, and its value runs to the closing brace; a payload that holds
    that text too is left to the caller (None), as is a field written twice."""
    if next(reversed(row), None) != "payload" or text[-1:] != b"}":
        return None
    at = text.find(_PAYLOAD)
    if at < 0 or text.rfind(_PAYLOAD) != at:
        return None
    return text[at + len(_PAYLOAD) : -1].decode()


def task_of(row: dict[str, Any], *, now: float, wall: float) -> Task:
    """The task a row describes, its times moved onto a clock that reads `now` at Unix `wall`."""
    try:
        shift = now - wall
        affinity = row.get("affinity")
        deadline = row.get("deadline")
        level = int(row["priority"])
        if not 0 <= level < len(_PRIORITIES):
            raise ValueError(f"priority {level} is not a level")
        priority = _PRIORITIES[level]  # an Enum call costs ~1 us a row; indexing ~30 ns
        return Task(
            id=str(row["id"]),
            payload=row.get("payload"),
            priority=priority,
            level=priority,
            tenant=row.get("tenant"),
            deadline=None if deadline is None else float(deadline) + shift,
            estimate=row.get("estimate"),
            affinity=None if affinity is None else frozenset(affinity),
            region=row.get("region"),
            idempotency_key=row.get("key"),
            max_retries=int(row.get("max_retries", 2)),
            period=row.get("period"),
            attempt=int(row.get("attempt", 0)),
            seq=int(row.get("seq", 0)),
            submitted_at=float(row["submitted_wall"]) + shift,
            error=row.get("error"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TaskRejected(f"row: malformed task row {row.get('id')!r} ({exc})") from None


def record_of(row: dict[str, Any]) -> TaskRecord:
    """What a row says about its task, as `Store.result` returns it."""
    state: RecordState = row.get("state", "waiting")
    return TaskRecord(
        str(row["id"]),
        state,
        int(row.get("attempt", 0)),
        row.get("result"),
        row.get("error"),
        row.get("finished_wall"),
    )


def parse(text: str | bytes) -> dict[str, Any]:
    """A row's JSON text back to a dict."""
    value = _decode(text)
    if not isinstance(value, dict):
        raise TaskRejected("row: not a JSON object")
    return value


_str = json.encoder.encode_basestring_ascii


def _text(value: str | None) -> str:
    return "null" if value is None else _str(value)


def _number(value: float | None) -> str:
    return "null" if value is None else repr(value)  # finite: Task.create checked


@dataclass(frozen=True, slots=True)
class RowParts:
    """The parts of a task's row that its life does not change (everything but state, attempt,
    result, error and finished_wall), written once and kept by the leader: every later row of
    the task is these parts joined with its current state (`row`)."""

    head: str  # {"id":...,"seq":...,"state":"
    middle: str  # ,"priority": ... ,"submitted_wall":...
    tail: str  # ,"client":...,"payload":...}

    def finished(
        self, state: RecordState, attempt: int, result: str, error: str | None, wall: str
    ) -> str:
        """`row` of a finished task, its `finished_wall` already JSON text (`wall`: a flush
        renders it once for all its rows)."""
        return (
            f'{self.head}{state}","attempt":{attempt}{self.middle},"result":{result},'
            f'"error":{_text(error)},"finished_wall":{wall}{self.tail}'
        )

    def row(
        self,
        state: RecordState,
        attempt: int,
        result: str = "null",
        error: str | None = None,
        finished_wall: float | None = None,
    ) -> str:
        """The row in `state` (JSON text; `result` is JSON already encoded)."""
        return (
            f'{self.head}{state}","attempt":{attempt}{self.middle},"result":{result},'
            f'"error":{_text(error)},"finished_wall":{_number(finished_wall)}{self.tail}'
        )


def row_parts(task: Task, *, shift: float, payload: str, client: str | None) -> RowParts:
    """A task's `RowParts`, its times moved onto Unix time by `shift`; `payload` is JSON text
    already encoded (last, as in `new_row`). Built by hand: the leader's hot path."""
    deadline = task.deadline
    affinity = task.affinity
    names = "null" if affinity is None else "[" + ",".join(map(_str, sorted(affinity))) + "]"
    return RowParts(
        f'{{"id":{_str(task.id)},"seq":{task.seq},"state":"',
        f',"priority":{int(task.priority)},"tenant":{_text(task.tenant)},'
        f'"deadline":{"null" if deadline is None else repr(deadline + shift)},'
        f'"estimate":{_number(task.estimate)},"affinity":{names},"region":{_text(task.region)},'
        f'"key":{_text(task.idempotency_key)},"max_retries":{task.max_retries},'
        f'"period":{_number(task.period)},"submitted_wall":{task.submitted_at + shift!r}',
        f',"client":{_text(client)},"payload":{payload}}}',
    )


def leader_row(
    task: Task,
    state: RecordState,
    *,
    shift: float,
    payload: str,
    client: str | None,
    result: str = "null",
    error: str | None = None,
    finished_wall: float | None = None,
) -> str:
    """The row (JSON text) the leader's flush writes for `task` in `state`, with its times moved
    onto Unix time by `shift`; `payload` and `result` are JSON texts already encoded."""
    parts = row_parts(task, shift=shift, payload=payload, client=client)
    return parts.row(state, task.attempt, result, error, finished_wall)


def reply_entry(task: Task, state: RecordState, result: str, error: str | None) -> str:
    """A `reply:<client>` entry for a finished task (format in the wire formats)."""
    return (
        f'{{"id":{_str(task.id)},"state":"{state}","result":{result},'
        f'"error":{_text(error)},"attempt":{task.attempt}}}'
    )
