"""The networked durable store: the memory store's structures, journaled to one swarm's keys in
Redis (docs/distributed.md), by the one process holding the swarm's leader lease.

As with `SqliteStore`, scheduling stays in memory and the journal (`store/journal.py`) keeps the
tasks whose recorded state changed dirty; `flush` writes their rows in one call of `flush.lua`,
which also records finished and dead ids (for retention and dead letters), pushes each finished
task's outcome to its client's `reply:<client>` list, trims a batch of expired rows and may
store the latest report. Every write is fenced: the script refuses it unless `leader` still
holds this store's token, so a process that lost the lease changes nothing.

Opening the store makes its process the leader: it takes the lease (or is handed one by the
elected coordinator), then `takeover.lua` bumps the epoch, returns every unfinished row and
voids what the previous leader handed out (inbox, leases, ready lists). Those rows are given
back by `take_recovered` and re-routed from scratch, as a SQLite recovery does. Tasks a client
submitted are taken in by `adopt`: their rows exist already, so nothing is written for them
until their first attempt starts.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from redis.client import Redis
from redis.exceptions import RedisError, ResponseError

from swarmbalancer.cluster.connect import durability_problems
from swarmbalancer.cluster.keys import SwarmKeys, check_swarm_id
from swarmbalancer.cluster.leader import LeaderLease
from swarmbalancer.cluster.rows import (
    RowParts,
    parse,
    payload_text,
    record_of,
    reply_entry,
    row_parts,
    task_of,
)
from swarmbalancer.cluster.scripts import script
from swarmbalancer.errors import LeaseHeld, StoreError, TaskRejected
from swarmbalancer.model import Task, TaskState
from swarmbalancer.policies.levels import LevelQueue
from swarmbalancer.store.codec import encode_payload, encode_result
from swarmbalancer.store.journal import LABELS, JournalStore
from swarmbalancer.store.memory import MemoryStore
from swarmbalancer.store.record import TaskRecord

log = logging.getLogger(__name__)

#: Rows per `flush.lua` call; a larger flush (a takeover's worth) goes as several calls in one
#: pipeline, so no single script holds the server for long.
FLUSH_CHUNK = 5000

#: The index in a `flush.lua` call's ARGV of its flag "may repeat an earlier call".
RESENT_ARG = 4

_FINISHED = frozenset({TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED})
_LEASE_LOST = "LEASELOST"
#: How far the caller's clock may drift from Unix time before `adopt` reads the offset afresh.
_SLACK = 0.005


@dataclass(frozen=True, slots=True)
class JournalBatch:
    """What `take_journal` hands a writer: the ARGV of each `flush.lua` call, in order; the
    Unix time it was taken at and the trim it asked for (for `trimmed`)."""

    calls: list[list[Any]]
    wall: float
    trim: int

    def resent(self) -> None:
        """Mark the calls as sent again (an earlier send may have run): flush.lua then pushes
        no reply whose task was finished already."""
        for args in self.calls:
            args[RESENT_ARG] = "1"


@dataclass(slots=True)
class _Chunk:
    """One `flush.lua` call's rows being gathered: (id, row) pairs by kind, idempotency pairs,
    and each client's reply entries with their task ids."""

    open: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    dead: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    replies: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    rows: int = 0


class RedisConfigWarning(RuntimeWarning):
    """The Redis server may lose or evict a swarm's state (no AOF, or an eviction policy)."""


_warned: set[str] = set()


class RedisStore(JournalStore):
    """`MemoryStore` plus a journal of task rows in Redis, written by `flush` under the leader
    lease.

    `client` is a synchronous redis-py client; `where` names the server in messages (no
    password; by default its host, port and database). Without a `lease`, the store takes one
    itself (a second opener while it is held gets a StoreError) and renews it from a daemon
    thread until `close`; the elected coordinator passes the lease it won instead. Finished
    rows (done, cancelled and dead letters alike) are kept for `retention` seconds, then
    trimmed `purge_batch` at a time.
    """

    def __init__(
        self,
        client: Redis,
        swarm_id: str,
        queue_factory: Callable[[], LevelQueue],
        *,
        where: str | None = None,
        lease: LeaderLease | None = None,
        lease_ttl: float = 10.0,
        lease_client: Redis | None = None,
        retention: float = 86_400.0,
        max_payload_bytes: int = 1 << 20,
        remember_keys: int = 100_000,
        purge_batch: int = 1000,
    ) -> None:
        super().__init__(
            queue_factory,
            retention=retention,
            max_payload_bytes=max_payload_bytes,
            remember_keys=remember_keys,
            purge_batch=purge_batch,
        )
        self.keys = keys = SwarmKeys(check_swarm_id(swarm_id))
        self.where = where = f"store: {where or _server_of(client)}"
        self._redis = client
        self._flush_script = script(client, "flush")
        self._clients: dict[str, str] = {}  # task id -> the client its outcome is pushed to
        self._stored: set[str] = set()  # tasks whose row exists: put writes nothing for them
        #: open tasks' rows but for their state: (what they were built from, the parts)
        self._parts: dict[str, tuple[tuple[Any, ...], RowParts]] = {}
        self._report: str | None = None
        self._ahead_starts: set[str] = set()  # started on a lease ahead since the last write
        self._abandoned = False
        self._wake_writer: Callable[[], None] | None = None
        self._flush_keys = [keys.leader, keys.tasks, keys.finished, keys.dead, keys.idem]
        self._flush_keys.append(keys.report)
        self._owns_lease = lease is None
        self._lease_client = lease_client
        try:
            _warn_if_unsafe(client, where)
            if lease is None:
                lease = LeaderLease(lease_client or client, keys, lease_ttl)
                if not lease.acquire():
                    raise LeaseHeld(
                        f"{where}: swarm {keys.swarm_id!r} is in use by another balancer or "
                        "coordinator (its leader lease is held)"
                    )
                lease.start_renewing()
            self.lease = lease
            self.epoch = self._take_over()
        except RedisError as exc:
            self._give_up(lease)
            raise StoreError(f"{where}: cannot open ({exc})") from None
        except BaseException:
            self._give_up(lease)
            raise

    def _give_up(self, lease: LeaderLease | None) -> None:
        """Opening failed: give back the lease this store took, and the connection."""
        if self._owns_lease and lease is not None:
            lease.release()
        self._disconnect()

    def _disconnect(self) -> None:
        self._redis.close()
        if self._lease_client is not None:
            self._lease_client.close()

    # -- opening: the takeover ----------------------------------------------------------------
    def _take_over(self) -> int:
        """Run `takeover.lua` and keep the unfinished rows for `take_recovered`; the epoch."""
        keys = self.keys
        takeover = script(self._redis, "takeover")
        try:
            reply = takeover(
                keys=[
                    keys.leader,
                    keys.epoch,
                    keys.tasks,
                    keys.finished,
                    keys.dead,
                    keys.inbox,
                    keys.leases,
                    keys.agents,
                    keys.beats,
                ],
                args=[self.lease.token],
            )
        except ResponseError as exc:
            raise self.fenced(exc) from None
        epoch, texts = int(reply[0]), reply[1:]
        wall = time.time()
        recovered: list[tuple[Task, bool]] = []
        for text in texts:
            try:
                row = parse(text)
                state = row.get("state")
                if state != "waiting" and state != "running":
                    continue
                task = task_of(row, now=wall, wall=wall)  # Unix times, as take_recovered wants
            except (TaskRejected, ValueError):
                continue  # a row no process could run (not JSON, or malformed): left alone
            self._keep_row(task, row, text if isinstance(text, bytes) else None)
            recovered.append((task, state == "running"))
        recovered.sort(key=lambda pair: pair[0].seq)
        self._recovered = recovered
        return epoch

    def _keep_row(self, task: Task, row: dict[str, Any], text: bytes | None = None) -> None:
        """Keep what the leader's rows need of a task it did not create: its payload's JSON
        (as the row's `text` holds it, when given and of the usual shape: not encoded again)
        and its client; its `put` then writes nothing (the row exists)."""
        task_id = task.id
        payload = None if text is None else payload_text(row, text)
        if payload is not None:
            self._payloads[task_id] = payload
        else:
            try:
                self._payloads[task_id] = encode_payload(row.get("payload"), sys.maxsize)
            except TaskRejected:  # NaN or infinity, written by some other client: keep them
                self._payloads[task_id] = "null"
        client = row.get("client")
        if isinstance(client, str):
            self._clients[task_id] = client
        self._stored.add(task_id)

    def adopt(
        self, rows: Iterable[dict[str, Any] | tuple[dict[str, Any], bytes]], now: float
    ) -> list[Task]:
        """The tasks of rows clients submitted (ids taken from the inbox), their times on the
        caller's clock, to submit to the balancer; a row may come with its text as stored
        (its payload's JSON is then taken from it, not encoded again). Rows that are not
        waiting, or whose task is already live here, are skipped (a requeue or a push seen
        twice)."""
        wall = now - self._offset(now)
        out: list[Task] = []
        for item in rows:
            row, text = item if isinstance(item, tuple) else (item, None)
            if row.get("state") != "waiting":
                continue
            task_id = row.get("id")
            if not isinstance(task_id, str) or self.get(task_id) is not None:
                continue
            try:
                task = task_of(row, now=now, wall=wall)
            except TaskRejected as exc:  # no process could run it: left as it is
                log.warning("%s: %s", self.where, exc)
                continue
            self._keep_row(task, row, text)
            out.append(task)
        return out

    def _offset(self, now: float) -> float:
        """The caller's clock minus Unix time, kept while it holds to within `_SLACK`: read
        afresh each time, it jitters by microseconds, and tasks adopted later could then sit
        earlier on the caller's clock than tasks of the same client adopted before them (a
        queue keeps its arrival-ordered fast lane only while arrivals never go back)."""
        offset = now - time.time()
        if abs(offset - self._clock_offset) > _SLACK:
            self._clock_offset = offset
        return self._clock_offset

    _clock_offset = float("inf")
    #: a write failed on the network (it may have run): the next calls may repeat it
    _uncertain = False

    def started_ahead(self, task_id: str) -> None:
        """`task_id`'s attempt started on the lease handed out ahead of it: its row is not
        written as running (it stays waiting until the task finishes), as the worker may have
        run it already, and most such starts find their outcome in the next batch. What that
        costs, should the leader die while the attempt runs: that attempt is not counted
        against `max_retries` (the caveat of every lease ahead, docs/distributed.md)."""
        self._ahead_starts.add(task_id)

    def payload_json(self, task_id: str) -> str:
        """An open task's payload as the JSON text its row holds (what a worker gets)."""
        return self._payloads.get(task_id, "null")

    def _lost(self, task: Task) -> None:
        self._stored.discard(task.id)
        self._parts.pop(task.id, None)
        super()._lost(task)

    # -- the journal --------------------------------------------------------------------------
    def abandon(self) -> None:
        """The lease is lost: write nothing more (the new leader owns the swarm's rows), so a
        balancer stopping on this store stops without errors."""
        self._abandoned = True
        self._written()
        self._report = None

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    def write_behind(self, wake: Callable[[], None] | None) -> None:
        """Hand the journal to a writer: from now on `flush` only calls `wake` (when there is
        something to write), and the writer takes the journal with `take_journal` and sends it
        in order with its other writes. The coordinator does so, so that its event loop never
        waits for Redis. None takes the journal back (`flush` writes it again)."""
        self._wake_writer = wake

    def flush(self, now: float) -> None:
        if self._abandoned:
            return
        wake = self._wake_writer
        if wake is None:
            super().flush(now)
            return
        self._last_now = now
        if self._dirty or self._report is not None:
            wake()

    def take_journal(self, now: float) -> JournalBatch | None:
        """The `flush.lua` calls that write everything dirty (and a trim and the report when
        due), the transitions then forgotten as written; None when there is nothing to write.
        The caller sends the calls, in order, again until they go: a resent call writes the
        same rows, and pushes no reply twice (flush.lua pushes a task's reply only when its
        row enters finished or dead)."""
        if self._abandoned:
            return None
        wall = time.time()
        if not self._dirty and not self._flush_due(wall):
            return None
        self._last_now = now
        trim = self._purge_batch if self._purge_due(wall) else 0
        if trim:
            self._next_purge = float("inf")  # until `trimmed` says how many went
        batch = JournalBatch(self._flush_args(wall, wall - now, trim), wall, trim)
        self._written()
        self._report = None
        return batch

    def trimmed(self, batch: JournalBatch, results: list[Any]) -> None:
        """A batch from `take_journal` was written; `results` are its calls' replies."""
        if batch.trim:
            self._purged(batch.wall, int(results[0]))

    def publish_report(self, report: str) -> None:
        """Store `report` (JSON) in `report` with the next flush, for any process to read."""
        self._report = report

    def _flush_due(self, wall: float) -> bool:
        return self._report is not None or self._purge_due(wall)

    def _write(self, wall: float, shift: float) -> None:
        """Write the dirty tasks' rows, keys, replies, the report and a trim, in one script
        call per `FLUSH_CHUNK` rows (one round trip)."""
        if self.lease.lost.is_set():
            raise StoreError(f"{self.where}: the leader lease is lost; nothing was written")
        trim = self._purge_batch if self._purge_due(wall) else 0
        report = self._report
        calls = self._flush_args(wall, shift, trim)
        self._uncertain = True  # until this write is known to have gone (or not run)
        try:
            if len(calls) == 1:
                results = [self._flush_script(keys=self._flush_keys, args=calls[0])]
            else:
                pipe = self._redis.pipeline(transaction=False)
                for args in calls:
                    self._flush_script(keys=self._flush_keys, args=args, client=pipe)
                results = pipe.execute()
        except ResponseError as exc:
            raise self.fenced(exc) from None
        except RedisError as exc:
            raise StoreError(f"{self.where}: cannot write ({exc})") from exc
        self._uncertain = False
        if report is not None and report is self._report:
            self._report = None
        if trim:
            self._purged(wall, int(results[0]))

    @property
    def flush_keys(self) -> list[str]:
        """The KEYS of every `flush.lua` call."""
        return self._flush_keys

    def fenced(self, exc: ResponseError) -> StoreError:
        """The StoreError for a script's refusal: the lease is lost, or another error."""
        if str(exc).startswith(_LEASE_LOST):
            self.lease.lost.set()
            return StoreError(
                f"{self.where}: the leader lease is lost (another process took swarm "
                f"{self.keys.swarm_id!r} over); nothing was written"
            )
        return StoreError(f"{self.where}: cannot write ({exc})")

    def _flush_args(self, wall: float, shift: float, trim: int) -> list[list[Any]]:
        """The ARGV of each `flush.lua` call writing the dirty tasks (`FLUSH_CHUNK` rows per
        call; the first carries the trim and the report): (id, row) pairs of open, finished
        and dead tasks, idempotency pairs of new tasks, reply entries by client."""
        payloads, clients, results, new = self._payloads, self._clients, self._results, self._new
        kept, ahead = self._parts, self._ahead_starts
        calls: list[list[Any]] = []
        chunk = _Chunk()
        wall_text = repr(wall)
        labels = LABELS
        for task_id, task in self._dirty.items():
            state = labels.get(task.state, "waiting")
            if state == "running" and task_id in ahead and task_id not in new:
                continue  # started on its lease ahead: the row says waiting until it finishes
            stamp = (task, task.seq, task.priority, task.submitted_at, task.deadline, task.estimate)
            found = kept.get(task_id)
            if found is not None and found[0] == stamp:
                parts = found[1]
            else:  # a task's first row, or one whose lasting fields changed
                payload = payloads.get(task_id, "null")
                parts = row_parts(task, shift=shift, payload=payload, client=clients.get(task_id))
                kept[task_id] = (stamp, parts)
            if state == "waiting" or state == "running":
                chunk.open += (task_id, parts.row(state, task.attempt))
            else:
                result, error = "null", task.error
                if task_id in results:
                    text, why = encode_result(results[task_id])
                    if text is None:
                        error = why
                    else:
                        result = text
                row = parts.finished(state, task.attempt, result, error, wall_text)
                if state == "failed":
                    chunk.dead += (task_id, row)
                else:
                    chunk.finished += (task_id, row)
                client = clients.get(task_id)
                if client is not None:
                    group = chunk.replies.get(client)
                    if group is None:
                        group = chunk.replies[client] = ([], [])
                    group[0].append(task_id)
                    group[1].append(reply_entry(task, state, result, error))
            key = task.idempotency_key
            if key is not None and task_id in new:
                chunk.keys += (key, task_id)
            chunk.rows += 1
            if chunk.rows >= FLUSH_CHUNK:
                calls.append(self._call(chunk, trim, not calls))
                chunk = _Chunk()
        if chunk.rows or not calls:
            calls.append(self._call(chunk, trim, not calls))
        return calls

    def _call(self, chunk: _Chunk, trim: int, first: bool) -> list[Any]:
        report = (self._report or "") if first else ""
        args: list[Any] = [self.lease.token, repr(float(self._retention)), trim if first else 0]
        args += (report, "1" if self._uncertain else "0")
        args += (len(chunk.open) // 2, len(chunk.finished) // 2, len(chunk.dead) // 2)
        args += (len(chunk.keys) // 2, len(chunk.replies))
        args += chunk.open
        args += chunk.finished
        args += chunk.dead
        args += chunk.keys
        for client, (ids, entries) in chunk.replies.items():
            args += (client, len(ids))
            args += ids
            args += entries
        return args

    def _written(self) -> None:
        """Forget the written transitions; an open task keeps its payload and client (every
        row write is a whole row), a finished one lets them go."""
        payloads, clients, kept = self._payloads, self._clients, self._parts
        for task_id, task in self._dirty.items():
            if task.state in _FINISHED:
                payloads.pop(task_id, None)
                clients.pop(task_id, None)
                kept.pop(task_id, None)
        self._dirty.clear()
        self._new.clear()
        self._results.clear()
        self._ahead_starts.clear()

    def close(self) -> None:
        """Flush what is pending, give the lease up (if this store took it) and disconnect;
        the lease and connection go even when the last flush fails."""
        if self._closed:
            return
        try:
            super().close()
        finally:
            if not self._closed:
                self._close_backend()
                self._closed = True

    def _close_backend(self) -> None:
        if self._owns_lease:
            self.lease.release()
        self._disconnect()

    # -- lookups ------------------------------------------------------------------------------
    def _stored_record(self, task_id: str) -> TaskRecord | None:
        try:
            text = self._redis.hget(self.keys.tasks, task_id)
        except RedisError as exc:
            raise StoreError(f"{self.where}: cannot read ({exc})") from exc
        if text is None:
            return None
        return record_of(parse(text))

    def _stored_key(self, key: str) -> tuple[str, str, int, str | None] | None:
        try:
            found = self._redis.hget(self.keys.idem, key)
            if found is None:
                return None
            task_id = found.decode() if isinstance(found, bytes) else str(found)
            text = self._redis.hget(self.keys.tasks, task_id)
        except RedisError as exc:
            raise StoreError(f"{self.where}: cannot read ({exc})") from exc
        if text is None:
            return None
        row = parse(text)
        return task_id, str(row.get("state")), int(row.get("attempt", 0)), row.get("error")

    # -- transitions --------------------------------------------------------------------------
    def put(self, task: Task) -> tuple[Task, bool]:
        """Accept a task; one whose row exists already (recovered, or adopted from the inbox,
        where the submit script deduplicated its key) is only taken into memory."""
        task_id = task.id
        if task_id not in self._stored:
            return super().put(task)
        if self.get(task_id) is not None:
            raise TaskRejected(f"task_id: {task_id!r} is already in use")
        self._stored.discard(task_id)
        key = task.idempotency_key
        if key is not None:
            self._keys.pop(key, None)  # Redis deduplicated it: the key is this task's now
        return MemoryStore.put(self, task)


def _server_of(client: Redis) -> str:
    """The server a client talks to, as messages show it (no password)."""
    options = client.connection_pool.connection_kwargs
    host, port, db = (
        options.get("host", "localhost"),
        options.get("port", 6379),
        options.get("db", 0),
    )
    return f"redis://{host}:{port}/{db}"


def _warn_if_unsafe(client: Redis, where: str) -> None:
    """Warn once per server when it runs without the append-only file or may evict keys: a
    restart or memory pressure would then lose accepted tasks. Silent when CONFIG is refused
    (managed services): nothing can be told."""
    if where in _warned:
        return
    try:
        settings = dict(client.config_get("appendonly"))
        settings.update(client.config_get("maxmemory-policy"))
    except ResponseError:
        return
    _warned.add(where)
    problems = durability_problems(settings)
    if problems:
        warnings.warn(f"{where}: {'; '.join(problems)}", RedisConfigWarning, stacklevel=4)
