"""`Client`: submit tasks to a swarm across machines and await their outcomes.

Submits go out in batches: every submit made in one event-loop iteration is sent in one
`submit.lua` call (and `submit_many` in calls of up to `BATCH` rows), so many concurrent
producers cost a round trip per batch, not per task. Outcomes come back the same way
(`cluster.replies`): one reader pops this client's `reply:<client id>` list, up to 1000 at a
time, with a blocking BLMPOP, and resolves the handles.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from redis.asyncio import Redis

from swarmbalancer.cluster import dead, rows
from swarmbalancer.cluster.connect import TRANSIENT, connect, redact, split_store_url
from swarmbalancer.cluster.handle import RemoteHandle
from swarmbalancer.cluster.keys import SwarmKeys, check_agent_id
from swarmbalancer.cluster.link import Link
from swarmbalancer.cluster.replies import Replies
from swarmbalancer.cluster.scripts import async_script
from swarmbalancer.errors import ConfigError, NotRunning, StoreError, TaskRejected
from swarmbalancer.model import MAX_RETRIES, Priority, Task
from swarmbalancer.runtime.jobs import check_keywords, check_unique_ids, make_task, merged
from swarmbalancer.runtime.submission import make_batch
from swarmbalancer.store.record import TaskRecord

#: The most rows one script call carries.
BATCH = 1000
#: Rows in the first call of a large batch (see `_calls`).
FIRST_CALL = 100


@dataclass(slots=True)
class _Request:
    """One submit or submit_many waiting for the next batch: its rows, as submit.lua's
    (id, key, row tail) triples, and their answers."""

    args: list[str]
    answer: asyncio.Future[list[Any]]


class Client:
    """A producer of a swarm across machines: `async with Client(url, swarm_id) as c:`.

    `submit` and `submit_many` take the keywords of `Balancer.submit` (with `deadline` a Unix
    time) and return `RemoteHandle`s, asyncio futures resolved when the task's outcome is
    recorded. A task finished while no client listened (its outcome went to a client that
    closed) is read from its row: `await client.wait(task_id)`. Pass the same `client_id`
    again to receive the outcomes of tasks a previous client with that id submitted.
    """

    def __init__(
        self,
        store_url: str,
        swarm_id: str | None = None,
        *,
        client_id: str | None = None,
        max_retries: int = 2,
        max_payload_bytes: int = 1 << 20,
    ) -> None:
        self.url, swarm = split_store_url(store_url, swarm_id)
        self.keys = SwarmKeys(swarm)
        if client_id is not None:
            try:
                check_agent_id(client_id)
            except ConfigError as exc:
                raise ConfigError(f"client_{exc}") from None
        self._named = client_id is not None
        self.id = client_id or uuid.uuid4().hex
        if isinstance(max_retries, bool) or not isinstance(max_retries, int):
            raise ConfigError(f"max_retries: {max_retries!r} is not a whole number")
        if not 0 <= max_retries <= MAX_RETRIES:
            raise ConfigError(f"max_retries: must be between 0 and {MAX_RETRIES}")
        if isinstance(max_payload_bytes, bool) or not isinstance(max_payload_bytes, int):
            raise ConfigError(f"max_payload_bytes: {max_payload_bytes!r} is not a whole number")
        if max_payload_bytes < 1:
            raise ConfigError("max_payload_bytes: must be >= 1")
        self.max_retries = max_retries
        self.max_payload_bytes = max_payload_bytes
        # generated task ids: unique to this client object, so a submit retried after a lost
        # answer recognises its own rows
        self._prefix = uuid.uuid4().hex[:16]
        self._ids = itertools.count(1)
        self._redis: Redis | None = None
        self._replies: Replies | None = None
        self._queue: list[_Request] = []
        self._flusher: asyncio.Task[None] | None = None

    # lifecycle

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection (checked with a PING) and start reading replies."""
        if self._redis is not None:
            return
        client = connect(self.url)
        try:
            await client.ping()
        except TRANSIENT as exc:
            await client.aclose()
            raise ConfigError(f"store: cannot reach {redact(self.url)!r} ({exc})") from None
        self._redis = client
        self._submit = async_script(client, "submit")
        self._link = Link(client)  # submits go here: hiredis packs their thousands of arguments
        keys = self.keys
        self._submit_keys = [keys.seq, keys.tasks, keys.idem, keys.inbox]
        self._replies = Replies(client, keys, self.id)
        self._replies.start()

    async def close(self) -> None:
        """Send what is queued, stop reading, and fail the handles still waiting with
        NotRunning (`wait(task_id)` on another client resolves them later)."""
        client = self._redis
        if client is None:
            return
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        replies = self._replies
        if replies is not None:
            await replies.stop()
            replies.fail_all(
                NotRunning(
                    "the client closed before the task finished; "
                    "Client.wait(task_id) on another client resolves it"
                )
            )
        try:
            if not self._named:  # nobody else will read this client's replies
                await client.delete(self.keys.reply(self.id))
        except TRANSIENT:
            pass
        finally:
            self._redis = None
            self._replies = None
            await self._link.aclose()
            await client.aclose()

    async def _submit_part(self, part: list[str]) -> Any:
        """One submit.lua call on the client's own link, by SHA (loaded again after a server
        restart emptied the script cache)."""
        script = self._submit
        return await self._link.evalsha(script.sha, script.script, self._submit_keys, part)

    def _client(self) -> Redis:
        if self._redis is None:
            raise NotRunning("the client is not connected: use `async with Client(...)` first")
        return self._redis

    def _waiting(self) -> Replies:
        if self._replies is None:
            raise NotRunning("the client is not connected: use `async with Client(...)` first")
        return self._replies

    # submitting

    async def submit(
        self,
        payload: Any = None,
        *,
        priority: Priority | str = "normal",
        tenant: str | None = None,
        deadline: float | None = None,
        within: float | None = None,
        estimate: float | None = None,
        affinity: str | Iterable[str] | None = None,
        region: str | None = None,
        idempotency_key: str | None = None,
        task_id: str | None = None,
        max_retries: int | None = None,
        period: float | None = None,
    ) -> RemoteHandle:
        """Submit one task, with `Balancer.submit`'s keywords (`deadline` a Unix time). Returns
        its handle once the task is stored; for a repeated idempotency key, the existing task's
        handle (`created` False)."""
        self._client()
        wall = time.time()
        task = self._make(
            payload,
            wall,
            priority=priority,
            tenant=tenant,
            deadline=deadline,
            within=within,
            estimate=estimate,
            affinity=affinity,
            region=region,
            idempotency_key=idempotency_key,
            task_id=task_id,
            max_retries=max_retries,
            period=period,
        )
        handles = await self._send([task], self._rows([task], wall))
        return handles[0]

    async def submit_many(self, payloads: Iterable[Any], **keywords: Any) -> list[RemoteHandle]:
        """Submit a batch: `Job(payload, **keywords)` items override the shared keywords.
        Every item is validated before any is sent (one bad item: nothing is submitted); the
        rows go out in script calls of up to `BATCH`."""
        self._client()
        check_keywords(keywords)
        wall = time.time()
        tasks, plain = make_batch(
            payloads, keywords, wall, self._make_item, self._prefix, self._ids, self.max_retries
        )
        if not plain:  # generated ids are unique: only a batch naming some needs the check
            check_unique_ids(tasks)
        return await self._send(tasks, self._rows(tasks, wall))

    def _make(self, payload: Any, wall: float, **fields: Any) -> Task:
        """A validated task from submit's keywords; each bad field raises TaskRejected naming
        it, as `Balancer`'s."""
        return make_task(
            payload,
            wall,
            new_id=self._new_id,
            default_retries=self.max_retries,
            clock="the Unix time is",
            relative_hint="a client's deadlines are Unix times, use `within` for a relative one",
            **fields,
        )

    def _make_item(self, item: Any, keywords: dict[str, Any], wall: float) -> Task:
        payload, fields = merged(item, keywords)
        return self._make(payload, wall, **fields)

    def _new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def _rows(self, tasks: list[Task], wall: float) -> list[str]:
        """submit.lua's arguments for `tasks`: (id, "=" + key or "", row tail) each."""
        client, limit, tail = self.id, self.max_payload_bytes, rows.row_tail
        args: list[str] = []
        for task in tasks:
            key = task.idempotency_key
            args += (
                task.id,
                "" if key is None else "=" + key,
                tail(task, client=client, wall=wall, max_payload_bytes=limit),
            )
        return args

    async def _send(self, tasks: list[Task], args: list[str]) -> list[RemoteHandle]:
        """Queue rows for the next batch and turn the script's answers into handles."""
        replies = self._waiting()
        waiting = replies.waiting
        for task in tasks:
            if task.id in waiting:
                raise TaskRejected(f"task_id: {task.id!r} is already in use")
        loop = asyncio.get_running_loop()
        # registered before the rows are sent, so a reply racing the answer finds its handle
        provisional = [RemoteHandle(t.id, loop, waiting) for t in tasks]
        for handle in provisional:
            replies.expect(handle)
        request = _Request(args, loop.create_future())
        self._queue.append(request)
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())
        try:
            answers = await request.answer
        except BaseException:
            for handle in provisional:
                replies.forget(handle)
            raise
        return await self._handles(replies, provisional, answers)

    async def _flush(self) -> None:
        """Send every queued request: all the rows queued in one loop iteration together."""
        try:
            while self._queue:
                requests, self._queue = self._queue, []
                args = [arg for r in requests for arg in r.args]
                answers: list[Any] = []
                try:
                    for first, last in _calls(len(args) // 3):
                        part = args[3 * first : 3 * last]
                        reply = await self._submit_part(part)
                        answers += _answers(part, reply)
                except Exception as exc:
                    if isinstance(exc, TRANSIENT):
                        where = redact(self.url)
                        error: Exception = StoreError(
                            f"store: redis at {where!r} is unavailable ({exc})"
                        )
                        error.__cause__ = exc
                    else:
                        error = exc
                    for r in requests:
                        if not r.answer.done():
                            r.answer.set_exception(error)
                    continue
                at = 0
                for r in requests:
                    end = at + 2 * (len(r.args) // 3)
                    if not r.answer.done():
                        r.answer.set_result(answers[at:end])
                    at = end
        finally:
            self._flusher = None

    async def _handles(
        self, replies: Replies, provisional: list[RemoteHandle], answers: list[Any]
    ) -> list[RemoteHandle]:
        """Handles for the script's answers: pairs of (id, code), see submit.lua."""
        waiting = replies.waiting
        out: list[RemoteHandle] = []
        adopt: list[str] = []
        refused: str | None = None
        ours = f"{self._prefix}-"
        for handle, task_id, code in zip(provisional, answers[0::2], answers[1::2], strict=True):
            if code == -1 and handle.id.startswith(ours):
                code = 1  # our own row, written by a call whose answer was lost and retried
            if code == 1:
                out.append(handle)
                continue
            replies.forget(handle)
            if code == 0:
                existing = waiting.get(task_id)
                if existing is None:
                    existing = RemoteHandle(task_id, handle.get_loop(), waiting)
                    existing.created = False
                    replies.expect(existing)
                    adopt.append(task_id)
                out.append(existing)
            elif refused is None:
                refused = (
                    f"task_id: {handle.id!r} is already in use"
                    if code == -1
                    else f"row: task {handle.id!r} was refused by the server as malformed"
                )
        if adopt:
            await replies.adopt(adopt)
        if refused is not None:
            if len(provisional) > 1:
                refused += " (the batch's other tasks were submitted)"
            raise TaskRejected(refused)
        return out

    # waiting and reading

    async def wait(self, task_id: str) -> RemoteHandle:
        """A handle for any task of the swarm by id: resolved at once from its row when it has
        finished, else when its outcome is recorded. TaskRejected naming `task_id` when the
        swarm has no such task (never submitted, or its row's retention passed)."""
        replies = self._waiting()
        if not isinstance(task_id, str) or not task_id:
            raise TaskRejected(f"task_id: {task_id!r} is not a non-empty string")
        known = replies.waiting.get(task_id)
        if known is not None:
            return known
        handle = RemoteHandle(task_id, asyncio.get_running_loop(), replies.waiting)
        handle.created = False
        replies.expect(handle)
        try:
            with self._reaching():
                await replies.adopt([task_id])
        except StoreError:
            replies.forget(handle)
            raise
        if handle.done() and not handle.cancelled():
            error = handle.exception()
            if isinstance(error, TaskRejected):
                raise error
        return handle

    # reading the store

    async def result(self, task_id: str) -> TaskRecord | None:
        """What the swarm recorded about a task (state, attempt, result, error), or None."""
        with self._reaching():
            text = await self._client().hget(self.keys.tasks, task_id)
        return None if text is None else rows.record_of(rows.parse(text))

    async def dead_letters(self, limit: int | None = None) -> list[TaskRecord]:
        """Tasks that failed after their last retry, oldest first (at most `limit`)."""
        with self._reaching():
            return await dead.dead_letters(self._client(), self.keys, limit)

    async def requeue(self, ids: Iterable[str]) -> list[str]:
        """Take dead letters back: each runs again from attempt 0. Returns the ids requeued
        (ids that are not dead letters are skipped)."""
        with self._reaching():
            return await dead.requeue(self._client(), self.keys, ids)

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Redis out of reach (after redis-py's retries) as a StoreError."""
        try:
            yield
        except TRANSIENT as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StoreError:
        error = StoreError(f"store: redis at {redact(self.url)!r} is unavailable ({exc})")
        error.__cause__ = exc
        return error


#: submit.lua's codes (see its header) as `_handles` reads them.
_CODES = {ord("1"): 1, ord("0"): 0, ord("x"): -1}


def _answers(args: list[str], reply: list[Any]) -> list[Any]:
    """submit.lua's reply for the rows of `args` as (id, code) pairs, flat: the row's id, or
    the existing task's for code 0 (a known key); -2 for a malformed row."""
    codes, existing = reply[0], iter(reply[1:])
    out: list[Any] = []
    for i, code in enumerate(codes.encode() if isinstance(codes, str) else codes):
        number = _CODES.get(code, -2)
        if number == 0:
            found = next(existing)
            out += (found.decode() if isinstance(found, bytes) else str(found), 0)
        else:
            out += (args[3 * i], number)
    return out


def _calls(count: int) -> list[tuple[int, int]]:
    """The (first, last) rows of each `submit.lua` call for `count` rows: a large batch
    starts with a call of `FIRST_CALL` rows, so the leader can start its first tasks while
    the rest is still being sent, then goes on in calls of `BATCH`."""
    first = FIRST_CALL if count > 2 * FIRST_CALL else 0
    bounds = [(0, first)] if first else []
    bounds += [(at, min(at + BATCH, count)) for at in range(first, count, BATCH)]
    return bounds
