"""Fuzzing workload files through `load_workload` (what `run` and `simulate` call): any input gives
a `Workload` or one `WorkloadError` line, never another exception, and every loaded workload
generates finite tasks."""

from __future__ import annotations

import math
import tempfile
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz.strategies import TIME_LIMIT, fuzz_settings, raw_texts, serialise, workloads
from swarmbalancer.errors import WorkloadError
from swarmbalancer.workload import Workload, iter_tasks, load_workload, lower_bound


def load_text(text: str | bytes, suffix: str) -> Workload | None:
    """Load `text` from a file; None when it is refused with a one-line WorkloadError."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"w{suffix}"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            return load_workload(path)
        except WorkloadError as exc:
            assert "\n" not in str(exc), str(exc)
            assert str(exc).startswith(f"w{suffix}: ")
            return None


def check_generates_finite_tasks(workload: Workload) -> None:
    records = list(islice(iter_tasks(workload), 200))
    for record in records:
        assert math.isfinite(record.work) and record.work >= 0
        assert math.isfinite(record.arrival) and record.arrival >= 0
        assert math.isfinite(record.estimate)
        assert record.deadline is None or math.isfinite(record.deadline)
    assert math.isfinite(lower_bound(records, workload))
    workload.balancer_config()


@pytest.mark.timeout(TIME_LIMIT)
@fuzz_settings(300)
@given(data=workloads(), as_json=st.booleans())
def test_fuzzed_workload_documents_load_or_name_their_error(data: Any, as_json: bool) -> None:
    workload = load_text(serialise(data, as_json), ".json" if as_json else ".yaml")
    if workload is not None:
        check_generates_finite_tasks(workload)


@pytest.mark.timeout(TIME_LIMIT)
@fuzz_settings(300)
@given(text=raw_texts(), suffix=st.sampled_from([".yaml", ".yml", ".json"]))
def test_raw_document_text_loads_or_names_its_error(text: str, suffix: str) -> None:
    workload = load_text(text, suffix)
    if workload is not None:
        check_generates_finite_tasks(workload)


@pytest.mark.timeout(TIME_LIMIT)
@fuzz_settings(100)
@given(blob=st.binary(max_size=64), suffix=st.sampled_from([".yaml", ".json"]))
def test_arbitrary_bytes_load_or_name_their_error(blob: bytes, suffix: str) -> None:
    workload = load_text(blob, suffix)
    if workload is not None:
        check_generates_finite_tasks(workload)
