"""A client's row text (`new_row`, built by hand for speed) is exactly what the JSON encoder
writes for the same task, whatever its fields; the leader reads a payload's JSON back out of a
row's text (`payload_text`) only where that is the payload's own."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmbalancer.cluster.rows import json_row, leader_row, new_row, payload_text
from swarmbalancer.model import Task
from swarmbalancer.store.codec import encode_payload

texts = st.text(max_size=12)  # quotes, backslashes, control and non-ASCII characters included
finite = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    task_id=st.text(min_size=1, max_size=12),
    payload=st.one_of(st.none(), st.integers(), texts, st.lists(st.integers(), max_size=3)),
    priority=st.sampled_from(["critical", "high", "normal", "low", "background"]),
    tenant=st.none() | texts,
    estimate=st.none() | finite | st.integers(min_value=0, max_value=10**6),
    within=st.none() | st.floats(min_value=0.001, max_value=1e6),
    affinity=st.none() | st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=3),
    region=st.none() | st.text(min_size=1, max_size=12),
    key=st.none() | st.text(min_size=1, max_size=12),
    max_retries=st.integers(min_value=0, max_value=10),
    client=st.none() | texts,
    wall=st.floats(min_value=1e9, max_value=2e9),
)
def test_a_hand_built_row_is_what_the_json_encoder_writes(
    task_id: str,
    payload: object,
    priority: str,
    tenant: str | None,
    estimate: float | None,
    within: float | None,
    affinity: list[str] | None,
    region: str | None,
    key: str | None,
    max_retries: int,
    client: str | None,
    wall: float,
) -> None:
    task = Task.create(
        payload,
        now=wall,
        priority=priority,
        tenant=tenant,
        estimate=estimate,
        within=within,
        affinity=affinity,
        region=region,
        idempotency_key=key,
        task_id=task_id,
        max_retries=max_retries,
    )
    text = new_row(task, client=client, wall=wall, max_payload_bytes=1 << 20)
    expected = json_row(task, client=client, wall=wall, payload=encode_payload(payload, 1 << 20))
    assert text == expected
    assert json.loads(text)["id"] == task_id


@settings(max_examples=300, deadline=None)
@given(
    payload=st.none() | st.booleans() | st.integers() | texts | st.lists(st.integers(), max_size=3),
    max_retries=st.integers(min_value=0, max_value=10),
    client=st.none() | texts,
    wall=st.floats(min_value=1e9, max_value=2e9),
    count=st.integers(min_value=1, max_value=3),
)
def test_a_plain_tasks_row_is_what_the_json_encoder_writes_batch_after_batch(
    payload: object, max_retries: int, client: str | None, wall: float, count: int
) -> None:
    # plain tasks take the shortcut (the text between id and payload kept for the batch); the
    # payload's JSON is checked against json.dumps itself, not against encode_payload
    for n in range(count):
        task = Task.create(payload, now=wall + n, task_id=f"t{n}", max_retries=max_retries)
        text = new_row(task, client=client, wall=wall + n, max_payload_bytes=1 << 20)
        encoded = json.dumps(payload, separators=(",", ":"), allow_nan=False)
        assert encode_payload(payload, 1 << 20) == encoded
        assert text == json_row(task, client=client, wall=wall + n, payload=encoded)


payloads = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    payload=payloads,
    tenant=st.none() | texts,
    key=st.none() | texts.filter(bool),
    client=st.none() | texts,
    running=st.booleans(),
)
def test_a_payload_read_out_of_a_row_is_its_json_or_nothing(
    payload: object, tenant: str | None, key: str | None, client: str | None, running: bool
) -> None:
    task = Task.create(payload, now=0.0, tenant=tenant, idempotency_key=key, task_id="t")
    encoded = encode_payload(payload, 1 << 20)
    if running:
        text = leader_row(task, "running", shift=0.0, payload=encoded, client=client)
    else:
        text = new_row(task, client=client, wall=0.0, max_payload_bytes=1 << 20)
    found = payload_text(json.loads(text), text.encode())
    if ',"payload":' in encoded:  # the payload holds the marker: not read out
        assert found is None
    else:
        assert found == encoded


def test_a_row_not_of_the_usual_shape_gives_no_payload_text() -> None:
    task = Task.create([1, 2], now=0.0, task_id="t")
    text = new_row(task, client=None, wall=0.0, max_payload_bytes=1 << 20)
    extra = text[:-1] + ',"extra":1}'
    twice = text[:-1] + ',"payload":3}'
    assert payload_text(json.loads(text), text.encode()) == "[1,2]"
    assert payload_text(json.loads(extra), extra.encode()) is None
    assert payload_text(json.loads(twice), twice.encode()) is None
