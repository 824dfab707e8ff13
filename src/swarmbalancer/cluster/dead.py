"""Dead letters: tasks that failed after their last retry (`sb:{ID}:dead`), listed with what
their rows recorded, and taken back into the swarm by `requeue.lua`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from redis.asyncio import Redis

from swarmbalancer.cluster import rows
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.scripts import async_script
from swarmbalancer.errors import TaskRejected
from swarmbalancer.store.record import TaskRecord

#: The most ids one call reads or requeues.
BATCH = 1000


async def dead_letters(client: Redis, keys: SwarmKeys, limit: int | None) -> list[TaskRecord]:
    """The dead letters, oldest first (at most `limit`); one whose row's retention passed is
    listed with what the set still knows (its id and time)."""
    stop = -1 if limit is None else max(limit, 1) - 1
    entries = cast(
        list[tuple[bytes, float]], await client.zrange(keys.dead, 0, stop, withscores=True)
    )
    records: list[TaskRecord] = []
    for first in range(0, len(entries), BATCH):
        chunk = entries[first : first + BATCH]
        ids = [raw.decode() for raw, _ in chunk]
        found = await client.hmget(keys.tasks, ids)
        for task_id, (_, when), text in zip(ids, chunk, found, strict=True):
            if text is None:
                records.append(TaskRecord(task_id, "failed", 0, None, None, float(when)))
            else:
                records.append(rows.record_of(rows.parse(text)))
    return records


async def requeue(client: Redis, keys: SwarmKeys, ids: Iterable[str]) -> list[str]:
    """Send dead letters back to the swarm, each from attempt 0; returns the ids requeued
    (ids that are not dead letters are skipped). A bad id is a TaskRejected naming `task_id`."""
    wanted = list(ids)
    for task_id in wanted:
        if not isinstance(task_id, str) or not task_id:
            raise TaskRejected(f"task_id: {task_id!r} is not a non-empty string")
    script = async_script(client, "requeue")
    script_keys = [keys.tasks, keys.dead, keys.inbox, keys.finished, keys.counters]
    done: list[str] = []
    for first in range(0, len(wanted), BATCH):
        answer = await script(keys=script_keys, args=wanted[first : first + BATCH])
        done.extend(raw.decode() if isinstance(raw, bytes) else str(raw) for raw in answer)
    return done
