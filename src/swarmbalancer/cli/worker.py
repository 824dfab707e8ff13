"""`swarmbalancer worker`: run one agent of a swarm across machines (Redis) as this process."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from swarmbalancer.cli.live import fail
from swarmbalancer.errors import SwarmBalancerError
from swarmbalancer.worker.options import MAX_CAPACITY, MAX_RESULT_BYTES, WorkerOptions


def worker(
    store: Annotated[str, typer.Option("--store", help="redis://[:password@]host:port/db")],
    handler: Annotated[
        str, typer.Option("--handler", help="module:function run for each task (async or plain)")
    ],
    capacity: Annotated[
        int, typer.Option("--capacity", help=f"tasks run at once (1-{MAX_CAPACITY})")
    ],
    swarm_id: Annotated[
        str | None,
        typer.Option("--swarm-id", help="the swarm (default: the URL's swarm, else default)"),
    ] = None,
    region: Annotated[str | None, typer.Option("--region", help="this agent's region")] = None,
    agent_id: Annotated[
        str | None, typer.Option("--id", help="agent id (default: <host>-<pid>)")
    ] = None,
    weight: Annotated[float, typer.Option("--weight", help="routing weight")] = 1.0,
    cost: Annotated[float, typer.Option("--cost", help="cost per second of work")] = 0.0,
    speed_hint: Annotated[
        float | None, typer.Option("--speed-hint", help="a guess of its speed (learned anyway)")
    ] = None,
    heartbeat: Annotated[float, typer.Option("--heartbeat", help="seconds between beats")] = 1.0,
    max_result_bytes: Annotated[
        int, typer.Option("--max-result-bytes", help="longest result JSON accepted")
    ] = MAX_RESULT_BYTES,
) -> None:
    """Join a swarm as an agent: take the tasks the coordinator leases to it, run them with the
    handler, report the outcomes. SIGTERM or Ctrl-C drains it (finishes what it took), then it
    exits 0; a second signal exits at once."""
    from swarmbalancer.cli.app import _load_handler
    from swarmbalancer.cluster.connect import TRANSIENT, redact, split_store_url
    from swarmbalancer.worker.process import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        options = WorkerOptions(
            store=store,
            handler=handler,
            capacity=capacity,
            swarm_id=swarm_id,
            region=region,
            id=agent_id,
            weight=weight,
            cost=cost,
            speed_hint=speed_hint,
            heartbeat=heartbeat,
            max_result_bytes=max_result_bytes,
        ).check()
        split_store_url(store, swarm_id)  # the store is checked before the user's code loads
        process = Worker(options, _load_handler(handler))
        status = asyncio.run(process.run())
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
    except TRANSIENT as exc:  # the server never answered while joining
        raise fail(f"--store: cannot reach redis at {redact(store)!r} ({exc})") from None
    raise typer.Exit(status)
