"""The handles a client waits on, and the reader that resolves them.

One reader pops the client's `reply:<client id>` list, up to `BATCH` entries per BLMPOP, while
any handle waits (it blocks on an event otherwise, so an idle client sends nothing). A task
whose outcome goes to another client (`Client.wait` on it) is resolved from its row instead:
those rows are read once a second, all in one call. The reader is stopped by an entry pushed
to its own list, never by cancelling a blocking command in flight (which can leave a
connection in an unknown state).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from redis.asyncio import Redis

from swarmbalancer.cluster import rows
from swarmbalancer.cluster.connect import TRANSIENT
from swarmbalancer.cluster.entries import decode_objects
from swarmbalancer.cluster.handle import RemoteHandle
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.link import Link, first_error
from swarmbalancer.errors import TaskRejected

log = logging.getLogger("swarmbalancer.cluster")

#: The most replies one BLMPOP takes, and rows one HMGET reads.
BATCH = 1000
#: How long one BLMPOP blocks, and how often other clients' tasks' rows are read.
BLOCK_SECONDS = 1.0
#: What `stop` pushes to wake the reader (a reply without an id).
_WAKE = "{}"
_FINISHED = ("done", "failed", "cancelled")


class Replies:
    """Unresolved handles by task id, and the task that resolves them."""

    def __init__(self, client: Redis, keys: SwarmKeys, client_id: str) -> None:
        self.waiting: dict[str, RemoteHandle] = {}
        self._foreign: set[str] = set()  # waiting tasks whose replies go to another client
        self._client = client
        self._keys = keys
        self._client_id = client_id
        self._key = keys.reply(client_id)
        self._wanted = asyncio.Event()
        self._stopping = asyncio.Event()
        self._blocked = False  # a BLMPOP is in flight
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def stop(self) -> None:
        """Stop the reader: wake it from its event or its BLMPOP, and wait for it."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        self._wanted.set()
        if self._blocked:
            try:
                await self._client.rpush(self._key, _WAKE)
            except TRANSIENT:  # the server is gone: nothing useful is in flight anyway
                task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    def expect(self, handle: RemoteHandle) -> None:
        """Wait for the outcome of `handle`'s task."""
        self.waiting[handle.id] = handle
        self._wanted.set()

    def forget(self, handle: RemoteHandle) -> None:
        if self.waiting.get(handle.id) is handle:
            del self.waiting[handle.id]

    def fail_all(self, error: BaseException) -> None:
        """Resolve every waiting handle with `error` (the client closes)."""
        for handle in self.waiting.values():
            if not handle.done():
                handle.set_exception(error)
                handle._log_traceback = False
        self.waiting.clear()
        self._foreign.clear()

    async def adopt(self, ids: list[str]) -> None:
        """Read the rows of waiting tasks this client may not get replies for: settle the
        finished ones; watch the rows of those whose outcome goes to another client; a task
        without a row resolves with TaskRejected naming `task_id`."""
        for first in range(0, len(ids), BATCH):
            chunk = ids[first : first + BATCH]
            found = await self._client.hmget(self._keys.tasks, chunk)
            for task_id, text in zip(chunk, found, strict=True):
                handle = self.waiting.get(task_id)
                if handle is None:
                    continue
                if text is None:
                    self._settle(task_id, None)
                    handle.set_exception(
                        TaskRejected(
                            f"task_id: {task_id!r} is not a task of this swarm (never "
                            "submitted, or its result's retention passed)"
                        )
                    )
                    handle._log_traceback = False
                    continue
                row = rows.parse(text)
                if row.get("state") in _FINISHED:
                    self._settle(task_id, row)
                elif row.get("client") != self._client_id:
                    self._foreign.add(task_id)

    def _settle(self, task_id: str, outcome: dict[str, Any] | None) -> None:
        """Resolve a waiting task's handle from a reply or a finished row (None: just drop)."""
        handle = self.waiting.pop(task_id, None)
        self._foreign.discard(task_id)
        if handle is not None and outcome is not None:
            handle.settle(
                str(outcome.get("state")),
                outcome.get("result"),
                outcome.get("error"),
                int(outcome.get("attempt") or 0),
            )

    async def _read(self) -> None:
        link = Link(self._client)  # a connection of its own: no redis-py machinery per pop
        try:
            await self._read_on(link)
        finally:
            await link.aclose()

    async def _read_on(self, link: Link) -> None:
        loop = asyncio.get_running_loop()
        next_check = 0.0
        pause = 0.05
        while not self._stopping.is_set():
            if not self.waiting:
                self._wanted.clear()
                await self._wanted.wait()
                continue
            self._blocked = True
            try:
                pop = ("BLMPOP", BLOCK_SECONDS, 1, self._key, "LEFT", "COUNT", BATCH)
                (got,) = await link.call(pop, wait=BLOCK_SECONDS)
                self._blocked = False
                first_error([got])
                if self._foreign and loop.time() >= next_check and not self._stopping.is_set():
                    next_check = loop.time() + BLOCK_SECONDS
                    await self.adopt(list(self._foreign))
            except TRANSIENT as exc:
                self._blocked = False
                if self._stopping.is_set():
                    return
                log.warning("replies: redis unavailable (%s); retrying in %.2fs", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            pause = 0.05
            if got:
                for reply in decode_objects(cast(list[bytes], got[1]), "replies"):
                    task_id = reply.get("id")
                    if task_id is not None:
                        self._settle(task_id, reply)
