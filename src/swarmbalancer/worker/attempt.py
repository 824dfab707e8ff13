"""One attempt a worker runs: read from a `ready:<agent>` entry, ended by an outcome (JSON) that
`report.lua` checks against the lease (formats in /docs/distributed.md and the wire formats)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from swarmbalancer.metrics.usage import Usage
from swarmbalancer.model import Task
from swarmbalancer.runtime.outcomes import Failure

log = logging.getLogger("swarmbalancer.worker")

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_string = json.encoder.encode_basestring_ascii  # a str as a JSON string literal


@dataclass(slots=True)
class UsageSum:
    """What one attempt's handler reported with `report_usage`, summed (the last model named)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    cost: float | None = None

    def add(self, usage: Usage) -> None:
        if usage.input_tokens is not None:
            self.input_tokens = (self.input_tokens or 0) + usage.input_tokens
        if usage.output_tokens is not None:
            self.output_tokens = (self.output_tokens or 0) + usage.output_tokens
        if usage.cost is not None:
            self.cost = (self.cost or 0.0) + usage.cost
        if usage.model is not None:
            self.model = usage.model

    def view(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "model": self.model,
            "cost": self.cost,
        }


@dataclass(slots=True, eq=False)
class Attempt:
    """A lease taken from the ready list: the task the handler gets, its timeout, and what the
    handler reported; `reported` once its outcome went to the reporter (a plain handler's
    thread may still run after its timeout was reported)."""

    lease: str
    task: Task
    timeout: float | None
    usage: UsageSum | None = None
    reported: bool = False
    timer: Any = field(default=None, repr=False)

    def usage_sink(self, agent_id: str, tenant: str | None, usage: Usage) -> None:
        """`report_usage` inside the handler lands here (the `Meter` sink signature)."""
        if self.usage is None:
            self.usage = UsageSum()
        self.usage.add(usage)


def parse_entries(raws: list[bytes]) -> list[Attempt]:
    """The attempts of a batch taken from the ready list, in order: one `json.loads` of them
    all as a JSON array (each entry is a JSON text, so joined with commas they are one), the
    entries one by one when that fails; a malformed entry is skipped (logged)."""
    try:
        entries = json.loads(b"[" + b",".join(raws) + b"]")
    except ValueError:
        entries = None
    if not isinstance(entries, list) or len(entries) != len(raws):
        found = (parse_entry(raw) for raw in raws)
        return [attempt for attempt in found if attempt is not None]
    out = []
    for entry, raw in zip(entries, raws, strict=True):
        attempt = _attempt_of(entry, raw)
        if attempt is not None:
            out.append(attempt)
    return out


def parse_entry(raw: bytes | str) -> Attempt | None:
    """The attempt a `ready:<agent>` entry describes, or None (logged) when it is malformed:
    such a lease is left to the leader, which expires it."""
    try:
        entry = json.loads(raw)
    except ValueError as exc:
        log.error("a ready entry is malformed and is skipped (%s): %.200r", exc, raw)
        return None
    return _attempt_of(entry, raw)


def _attempt_of(entry: Any, raw: bytes | str) -> Attempt | None:
    """The attempt of a decoded ready entry, or None (logged) when it is malformed."""
    try:
        lease = entry["lease"]
        task_id = entry["task"]
        attempt = entry.get("attempt", 1)
        deadline = entry.get("deadline")
        timeout = entry.get("timeout")
        if not isinstance(lease, str) or not isinstance(task_id, str):
            raise TypeError("lease and task must be strings")
        if isinstance(attempt, bool) or not isinstance(attempt, int):
            raise TypeError("attempt must be an integer")
        if deadline is not None and not isinstance(deadline, int | float):
            raise TypeError("deadline must be a number")
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            timeout = None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.error("a ready entry is malformed and is skipped (%s): %.200r", exc, raw)
        return None
    task = Task(id=task_id, payload=entry.get("payload"), attempt=attempt, deadline=deadline)
    return Attempt(lease, task, None if timeout is None else float(timeout))


def succeeded(agent_id: str, attempt: Attempt, result: Any, runtime: float, limit: int) -> str:
    """The outcome of an attempt whose handler returned `result`; a result that is not JSON or
    whose JSON exceeds `limit` bytes becomes a failure (not retryable: it would fail again)."""
    try:
        text = _encode(result)
    except (TypeError, ValueError) as exc:
        why = f"result: not JSON-serialisable ({exc})"
        return _outcome(agent_id, attempt, "null", why, False, None, runtime)
    if len(text) > limit:
        why = f"result: {len(text)} bytes of JSON exceed --max-result-bytes ({limit})"
        return _outcome(agent_id, attempt, "null", why, False, None, runtime)
    return _outcome(agent_id, attempt, text, None, True, None, runtime)


def failed(agent_id: str, attempt: Attempt, failure: Failure, runtime: float) -> str:
    """The outcome of an attempt whose handler raised (or timed out)."""
    return _outcome(
        agent_id, attempt, "null", failure.text, failure.retryable, failure.retry_after, runtime
    )


def _outcome(
    agent_id: str,
    attempt: Attempt,
    result: str,
    error: str | None,
    retryable: bool,
    retry_after: float | None,
    runtime: float,
) -> str:
    # written by hand (the hot path: one per task), "lease" and "task" first as report.lua
    # reads them; the result is spliced in already encoded, so it is encoded (and measured) once.
    # A plain success leaves out the fields at their defaults (error null, retryable true,
    # retry_after null, usage null): a quarter of its bytes, encoded, stored and decoded less
    if error is None and retry_after is None and attempt.usage is None:
        return (
            f'{{"lease":{_string(attempt.lease)},"task":{_string(attempt.task.id)},'
            f'"agent":{_string(agent_id)},"ok":true,"runtime":{float(runtime)!r},'
            f'"result":{result}}}'
        )
    usage = "null" if attempt.usage is None else _encode(attempt.usage.view())
    return (
        f'{{"lease":{_string(attempt.lease)},"task":{_string(attempt.task.id)},'
        f'"agent":{_string(agent_id)},"ok":{"true" if error is None else "false"},'
        f'"error":{"null" if error is None else _string(error)},'
        f'"retryable":{"true" if retryable else "false"},'
        f'"retry_after":{"null" if retry_after is None else repr(float(retry_after))},'
        f'"runtime":{float(runtime)!r},"usage":{usage},"result":{result}}}'
    )
