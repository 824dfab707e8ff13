"""Runs a workload file for real: synthetic agents (or a user's handler) in the embedded runtime."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

from swarmbalancer.config import BalancerConfig
from swarmbalancer.coordinator import Coordinator
from swarmbalancer.errors import ConfigError
from swarmbalancer.runtime.balancer import Balancer, Handler
from swarmbalancer.runtime.feeder import YIELD_EVERY, WorkloadFeeder, workload_balancer
from swarmbalancer.workload import Workload

__all__ = ["YIELD_EVERY", "load_handler", "run_workload"]

Progress = Callable[[Coordinator, int], None]


def load_handler(ref: str) -> Handler:
    """Import `module:function`; a bad reference is a ConfigError naming the option."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--handler: {ref!r} is not of the form module:function")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--handler: cannot load {ref!r} ({exc})") from None
    if not callable(fn):
        raise ConfigError(f"--handler: {ref!r} is not callable")
    return fn  # type: ignore[no-any-return]


async def run_workload(
    workload: Workload,
    config: BalancerConfig,
    *,
    handler: Handler | None = None,
    on_progress: Progress | None = None,
    progress_every: float = 0.1,
    store: str | None = None,
) -> dict[str, Any]:
    """Submit every task of the workload at its arrival time and return the final report;
    `store` is a store URL (memory by default, or sqlite:///path.db)."""
    # the synthetic agents run at the workload's speeds: the bound may use them
    balancer = workload_balancer(workload, config, store=store, synthetic=handler is None)
    feeder = WorkloadFeeder(workload, balancer, handler=handler)
    async with balancer:
        feeder.start()
        ticker = _start_progress(balancer, len(feeder.records), on_progress, progress_every)
        try:
            await feeder.feed()
            await balancer.join()
        finally:
            if ticker is not None:
                ticker.cancel()
    balancer.close()  # a durable store's file is released once the run has drained
    if on_progress is not None:
        on_progress(balancer.coordinator, len(feeder.records))
    return balancer.report()


def _start_progress(
    balancer: Balancer, total: int, on_progress: Progress | None, every: float
) -> asyncio.Task[None] | None:
    if on_progress is None:
        return None

    async def tick() -> None:
        while True:
            on_progress(balancer.coordinator, total)
            await asyncio.sleep(every)

    return asyncio.get_running_loop().create_task(tick())
