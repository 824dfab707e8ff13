"""A client's row text (`new_row`, built by hand for speed) is exactly what the JSON encoder
writes for the same task, whatever its fields."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmbalancer.cluster.rows import json_row, new_row
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
