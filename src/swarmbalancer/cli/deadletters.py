"""`swarmbalancer dead-letters`: list a distributed swarm's dead letters (tasks that failed
after their last retry) and requeue some or all of them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from swarmbalancer.cli.live import fail
from swarmbalancer.errors import ConfigError, SwarmBalancerError
from swarmbalancer.store.record import TaskRecord

out = Console()
err = Console(stderr=True)


def dead_letters(
    store: Annotated[str, typer.Option("--store", help="redis://[:password@]host:port/db")],
    swarm_id: Annotated[
        str | None,
        typer.Option("--swarm-id", help="the swarm (default: the URL's swarm, else default)"),
    ] = None,
    requeue: Annotated[
        list[str] | None, typer.Option("--requeue", help="requeue this task id (repeatable)")
    ] = None,
    requeue_all: Annotated[
        bool, typer.Option("--requeue-all", help="requeue every dead letter")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout, for scripts")] = False,
) -> None:
    """List the tasks that failed after their last retry; `--requeue ID` or `--requeue-all`
    sends them back to the swarm, each from attempt 0."""
    try:
        if requeue and requeue_all:
            raise ConfigError("--requeue: give task ids or --requeue-all, not both")
        answer = asyncio.run(_run(store, swarm_id, requeue or [], requeue_all))
    except SwarmBalancerError as exc:
        raise fail(str(exc)) from None
    _show(answer, as_json)


async def _run(
    store: str, swarm_id: str | None, ids: list[str], everything: bool
) -> dict[str, Any]:
    from swarmbalancer.cluster.client import Client

    async with Client(store, swarm_id) as client:
        letters = await client.dead_letters()
        if not ids and not everything:
            return {"dead_letters": [_view(r) for r in letters]}
        wanted = [r.id for r in letters] if everything else ids
        done = await client.requeue(wanted)
        skipped = [i for i in wanted if i not in set(done)]
        return {"requeued": done, "not_dead_letters": skipped}


def _view(record: TaskRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "attempt": record.attempt,
        "error": record.error,
        "failed_at": record.finished_wall,
    }


def _show(answer: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(answer, indent=2) + "\n")
        return
    if "requeued" in answer:
        out.print(f"requeued {len(answer['requeued'])} task(s)")
        if answer["not_dead_letters"]:
            err.print(f"not dead letters (skipped): {', '.join(answer['not_dead_letters'])}")
        return
    table = Table(title=f"{len(answer['dead_letters'])} dead letter(s)")
    for column in ("task", "attempts", "failed at (UTC)", "error"):
        table.add_column(column)
    for row in answer["dead_letters"]:
        when = row["failed_at"]
        stamp = "—" if when is None else dt.datetime.fromtimestamp(when, dt.UTC).isoformat()
        table.add_row(row["id"], str(row["attempt"]), stamp, row["error"] or "—")
    out.print(table)
