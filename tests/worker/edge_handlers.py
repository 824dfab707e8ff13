"""Handlers the worker processes of the tests import (`--handler edge_handlers:NAME`, run with
this directory as the working directory): one behaviour per payload's "do"."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from swarmbalancer import NonRetryable, RetryAfter, Task, report_usage

_running = 0
_peak = 0


def behave(payload: dict[str, Any]) -> Any:
    do = payload.get("do", "double")
    if do == "double":
        return payload["n"] * 2
    if do == "fail":
        raise ValueError(f"bad {payload.get('n')}")
    if do == "never":
        raise NonRetryable(KeyError("gone"))
    if do == "rest":
        raise RetryAfter(2.5)
    if do == "object":
        return object()
    if do == "big":
        return "x" * payload["size"]
    if do == "usage":
        report_usage(input_tokens=3, output_tokens=4, model="m1", cost=0.25)
        report_usage(input_tokens=3, output_tokens=4, cost=0.25)
        return "metered"
    if do == "peak":
        return _peak
    raise AssertionError(f"unknown behaviour {do!r}")


async def async_handler(task: Task) -> Any:
    global _running, _peak
    _running += 1
    _peak = max(_peak, _running)
    try:
        if task.payload.get("do") == "own-timeout":  # runs inside a Task of its own
            async with asyncio.timeout(5):
                await asyncio.sleep(0.01)
            return "in a task"
        await asyncio.sleep(task.payload.get("sleep", 0))
        return behave(task.payload)
    finally:
        _running -= 1


def plain_handler(task: Task) -> Any:
    if task.payload.get("do") == "own-timeout":
        return "in a task"
    time.sleep(task.payload.get("sleep", 0))
    return behave(task.payload)


async def async_noop(task: Task) -> None:
    return None


def plain_noop(task: Task) -> None:
    return None


not_callable = 42


async def logged(task: Task) -> int:
    """Note the start in $SB_RAN_LOG (one line per attempt begun, so a task started twice shows
    twice), sleep the payload's `sleep`, return the payload's `n`."""
    with open(os.environ["SB_RAN_LOG"], "a") as log:  # noqa: ASYNC230 - a short append
        log.write(f"{task.id} {os.getpid()}\n")
    await asyncio.sleep(task.payload.get("sleep", 0))
    return int(task.payload["n"])
