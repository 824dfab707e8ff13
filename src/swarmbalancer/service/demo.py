"""`serve --demo`: the service hosts a workload's synthetic swarm (the built-in demo) and plays
it round after round until it stops, so every command, the dashboard and `/metrics` move."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from swarmbalancer.config import BalancerConfig
from swarmbalancer.runtime.feeder import WorkloadFeeder
from swarmbalancer.service.core import Service
from swarmbalancer.service.settings import ServeSettings
from swarmbalancer.workload import Workload
from swarmbalancer.workload.tenancy import with_tenants


def demo_settings(workload: Workload, config: BalancerConfig, **settings: Any) -> ServeSettings:
    """Settings of a service hosting `workload`: its tenants added to `config`."""
    return ServeSettings(config=with_tenants(config, workload), workload=workload, **settings)


def hosted_feeder(service: Service) -> WorkloadFeeder | None:
    """The feeder of the service's hosted workload, or None when it hosts none. Its tasks are
    booked as the API's own are, so they are readable by id and timed in `/metrics`."""
    workload = service.settings.workload
    if workload is None:
        return None
    service.balancer.coordinator.recorder.set_reference_speeds(workload.agent_speeds())
    return WorkloadFeeder(workload, service.balancer, on_submit=service.book.add)


@contextlib.asynccontextmanager
async def hosting(feeder: WorkloadFeeder | None) -> AsyncIterator[None]:
    """Play the workload in a loop while the context runs (on a started balancer)."""
    if feeder is None:
        yield
        return
    playing = asyncio.get_running_loop().create_task(feeder.repeat())
    try:
        yield
    finally:
        playing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await playing
