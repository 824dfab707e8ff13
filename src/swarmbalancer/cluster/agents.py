"""Workers as agents of the leader's Balancer: each worker's handler is a `RedisAgent`, which
leases the task out through Redis and awaits the outcome the worker reports, as the service's
HTTP agents do (service/hub.py).

The per-task work is a few dictionary operations: `LeaseDesk` collects the leases of a whole
loop iteration, which the leader's writer (cluster/writer.py) hands out in one `lease.lua` call
with the revocations of attempts that ended without an outcome, in the round trip that also
writes the journal; `pump_outcomes` takes up to 1000 outcomes at a time (`take.lua`, blocking
only when there are none) and resolves the waiting attempts. An outcome for a lease nobody
waits for any more (its attempt timed out, or its worker was declared lost) is discarded and
counted in `counters` as `late_results`. Every leader write and pop is fenced by its token.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from swarmbalancer.cluster.entries import decode_objects
from swarmbalancer.cluster.keys import SwarmKeys
from swarmbalancer.cluster.link import Link, first_error
from swarmbalancer.cluster.scripts import source
from swarmbalancer.errors import NonRetryable, RetryAfter, SwarmBalancerError
from swarmbalancer.model import Task
from swarmbalancer.runtime.measured import report_runtime
from swarmbalancer.usage import report_usage

log = logging.getLogger(__name__)

#: Outcomes popped per blocking read.
BATCH = 1000
#: Loop turns the leader lets pass after a take that found outcomes and emptied the list, so
#: that, busy, it takes them in batches rather than one or two at a time (no wall-clock wait:
#: an idle leader answers the next outcome as soon as it comes).
LINGER = 1


#: The errors of a server that cannot be reached (for now): a loop logs them and goes on.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)


class LeaseLost(SwarmBalancerError):
    """A leader script was refused: another process holds the leader lease now."""


def lease_lost(exc: ResponseError) -> bool:
    """Is this a leader script's refusal (the lease passed to another process)?"""
    return str(exc).startswith("LEASELOST")


class Taker:
    """Takes batches off one list for the leader: `take.lua` pops up to `count` entries,
    fenced by the leader's token (an array, parsed by hiredis on the `Link`). When the list is
    empty it blocks on BLMOVE of the list onto itself (up to `wait` seconds), which moves
    nothing, pipelined with the script (one write on a `Link`, a connection of its own):
    Redis runs the script the moment the wait returns, so a wake-up costs one round trip. With
    `rows`, the list holds task ids, and their rows are read from that hash with HMGET in a
    second round trip (not in the script: Redis's Lua hashes every byte of every string it
    makes, so rows read there cost the server twice what HMGET does), again until it goes."""

    def __init__(
        self,
        redis: AsyncRedis,
        keys: SwarmKeys,
        key: str,
        *,
        token: str,
        rows: str | None = None,
        wait: float = 1.0,
        linger: int = 0,
    ) -> None:
        self._redis = redis
        self._key = key
        self._keys = [keys.leader, key]
        self._rows = rows
        self._token = token
        self._wait = wait
        self._drained = False  # the last take left the list empty (as far as it knows)
        self._partial = False  # the last take found entries and left the list empty
        self._load = False  # the server lost the script: load it first
        self._linger = linger
        self._source = source("take")
        self._sha: str = str(redis.register_script(self._source).sha)
        self._link = Link(redis)

    def close(self) -> None:
        """Drop its connection (a stopped loop's)."""
        self._link.close()

    async def take(self, count: int = BATCH) -> list[Any]:
        """Up to `count` entries, parsed (JSON objects; an entry that is not one is logged and
        skipped); empty after waiting in vain (the caller comes back). After a take that
        emptied the list (or found it empty), the next one waits first, in the same round trip
        as the script (BLMOVE returns at once when entries came meanwhile)."""
        texts = await self._take(count)
        return decode_objects(texts, self._key) if texts else []

    async def take_texts(self, count: int = BATCH) -> list[tuple[dict[str, Any], bytes]]:
        """As `take`, each entry with its JSON text as it was stored."""
        texts = await self._take(count)
        if not texts:
            return []
        entries = decode_objects(texts, self._key)
        if len(entries) == len(texts):
            return list(zip(entries, texts, strict=True))
        out = []  # some entry was skipped: parse them one by one again, each with its text
        for text in texts:
            parsed = decode_objects((text,), self._key)
            if parsed:
                out.append((parsed[0], text))
        return out

    async def _take(self, count: int) -> list[bytes]:
        keys, wait = self._keys, self._wait
        take = ("EVALSHA", self._sha, len(keys), *keys, self._token, count)
        if self._partial and self._linger:
            for _ in range(self._linger):  # busy: let the loop's other work run first
                await asyncio.sleep(0)
        self._partial = False
        try:
            if self._load:  # the server restarted: its script cache is empty
                first_error(await self._link.call(("SCRIPT", "LOAD", self._source)))
                self._load = False
            if self._drained:
                block = ("BLMOVE", self._key, self._key, "LEFT", "LEFT", float(wait))
                replies = await self._link.call(block, take, wait=wait)
            else:
                replies = await self._link.call(take)
            first_error(replies)
            texts: list[bytes] = replies[-1]
            if texts:
                self._partial = self._drained = len(texts) < count
                return texts if self._rows is None else await self._read_rows(texts)
            self._drained = True
        except NoScriptError:
            self._load = True
        except ResponseError as exc:
            if lease_lost(exc):
                raise LeaseLost(str(exc)) from None
            raise
        except UNREACHABLE as exc:
            log.warning("taking from %s: %s; trying again", self._key, exc)
            await asyncio.sleep(min(1.0, self._wait))
        return []

    async def _read_rows(self, ids: list[bytes]) -> list[bytes]:
        """The rows of ids taken off the list (an id without a row is skipped), read until the
        read goes: the ids are off the list already."""
        assert self._rows is not None
        while True:
            try:
                (rows,) = await self._link.call(("HMGET", self._rows, *ids))
                first_error([rows])
                return [row for row in rows if row is not None]
            except UNREACHABLE as exc:
                log.warning("reading rows of %s: %s; trying again", self._key, exc)
                await asyncio.sleep(min(1.0, self._wait))


class RemoteError(Exception):
    """The error a worker reported for its attempt (the text it sent)."""


class WorkerLost(Exception):
    """A worker stopped heartbeating, restarted or left while holding the attempt's lease."""


#: A direct attempt (`LeaseDesk.begin`): its task, its worker and when it began (balancer clock).
Direct = tuple[Task, str, float]
#: A lease queued for `lease.lua`: agent id, lease id, task id, ready entry (JSON).
Issued = tuple[str, str, str, str]


class LeaseDesk:
    """The leases handed to workers: queued here for the writer, outcomes matched back by
    lease id.

    An attempt waits for its outcome one of two ways: as an awaited future (`lease`, the
    `RedisAgent` handler run by a worker Task, as the service's agents are), or as a direct
    attempt (`begin`), which the leader's balancer settles itself, a batch of outcomes at a
    time (`settle`), without a Task, a future or a wake-up per attempt.

    `payload_of(task_id)` gives a task's payload as JSON text (the store keeps it encoded);
    `clock()` is the balancer's clock, whose offset to Unix time turns deadlines into Unix
    times; `timeout()` the current `taskTimeout`; `wake()` tells the writer there is something
    to send.
    """

    def __init__(
        self,
        redis: AsyncRedis,
        keys: SwarmKeys,
        *,
        token: str,
        tag: str,
        payload_of: Callable[[str], str],
        clock: Callable[[], float],
        timeout: Callable[[], float | None],
        wake: Callable[[], None],
    ) -> None:
        self.keys = keys
        self._redis = redis
        self._token = token
        self._payload_of = payload_of
        self._clock = clock
        self._timeout = timeout
        self._wake = wake
        self._ids = itertools.count(1)
        self._tag = tag
        self._pending: list[Issued] = []  # new leases not sent yet
        self._revoked: list[str] = []  # lease ids whose attempt ended without an outcome
        self._voided: list[str] = []  # agents whose ready list is to be emptied
        self._late = 0  # outcomes discarded, not counted in Redis yet
        self._withdrawn: list[str] = []  # agent id, entry, ...: prefetched entries to take back
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._held: dict[str, dict[str, None]] = {}  # agent id -> its lease ids, in order
        #: agent id -> task id -> (lease id, entry): leased ahead of its start
        self.ahead: dict[str, dict[str, tuple[str, str]]] = {}
        self._ahead_ids: set[str] = set()  # the lease ids in `ahead`
        self._early: dict[str, dict[str, Any]] = {}  # lease ahead -> its outcome, come early
        #: lease id -> the direct attempt awaiting its outcome
        self.direct: dict[str, Direct] = {}
        #: (agent id, task id) -> a lease whose outcome is known, for the attempt's handler
        self._resolved: dict[tuple[str, str], tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        #: settles a batch of direct attempts' outcomes: (lease id, attempt, outcome) each
        self.settle: Callable[[list[tuple[str, Direct, dict[str, Any]]]], None] | None = None
        #: told of direct attempts whose worker was lost (`fail_agent`), with the error
        self.on_lost: Callable[[list[tuple[str, Direct]], BaseException], None] | None = None
        self.withdrawals = 0  # prefetched leases taken back (the task went elsewhere)
        #: told of each direct attempt that starts on its lease ahead (its task id)
        self.started_ahead: Callable[[str], None] | None = None

    def lease(self, agent_id: str, task: Task) -> tuple[str, asyncio.Future[dict[str, Any]]]:
        """The lease of `task`'s attempt on the worker `agent_id`: one whose outcome is known
        already (`resolve`), the one handed out ahead (`prefetch`), or a new one queued now;
        the future gets its outcome."""
        found = self._resolved.pop((agent_id, task.id), None)
        if found is not None:
            return found
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        lease_id, early = self._take_ahead(agent_id, task.id)
        if lease_id is None:
            lease_id = self._issue(agent_id, task, task.attempt)[0]
        if early is not None:
            future.set_result(early)
        else:
            self._waiting[lease_id] = future
        return lease_id, future

    def begin(self, agent_id: str, task: Task, now: float) -> tuple[str, dict[str, Any] | None]:
        """Start `task`'s attempt on `agent_id` as a direct attempt: the lease handed out
        ahead, or a new one. Returns its lease id and, when it came already, its outcome (the
        attempt is then not kept: the caller settles it at once); otherwise the outcome goes
        to `settle` when it comes."""
        lease_id, early = self._take_ahead(agent_id, task.id)
        if lease_id is None:
            lease_id = self._issue(agent_id, task, task.attempt)[0]
        elif self.started_ahead is not None:
            self.started_ahead(task.id)
        if early is None:
            self.direct[lease_id] = (task, agent_id, now)
        return lease_id, early

    def resolve(
        self, agent_id: str, task: Task, lease_id: str, outcome: dict[str, Any] | BaseException
    ) -> None:
        """Hand a direct attempt's outcome (or the error that ended it) over to its handler:
        the next `lease` of that task on that worker returns it, resolved."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
        self.direct.pop(lease_id, None)
        self._resolved[(agent_id, task.id)] = (lease_id, future)

    def _take_ahead(self, agent_id: str, task_id: str) -> tuple[str | None, dict[str, Any] | None]:
        """The lease handed out ahead for this task, if any, and its outcome if it came."""
        ahead = self.ahead.get(agent_id)
        if not ahead:
            return None, None
        found = ahead.pop(task_id, None)
        if found is None:
            return None, None
        lease_id = found[0]
        self._ahead_ids.discard(lease_id)
        return lease_id, self._early.pop(lease_id, None)

    def prefetch(self, agent_id: str, task: Task) -> None:
        """Lease `task`, queued at the agent, ahead of its start: the worker takes it from its
        ready list the moment a slot frees, without waiting for the leader's round trip; the
        attempt (`lease` or `begin`) then takes this lease over."""
        lease_id, entry = self._issue(agent_id, task, task.attempt + 1)
        ahead = self.ahead.get(agent_id)
        if ahead is None:
            ahead = self.ahead[agent_id] = {}
        ahead[task.id] = (lease_id, entry)
        self._ahead_ids.add(lease_id)

    def withdraw(self, agent_id: str, task_id: str) -> None:
        """Take back a lease handed out ahead whose task went elsewhere (stolen, rescued,
        moved, cancelled) or is gone: its ready entry is removed and the lease revoked, so a
        worker that took it meanwhile reports late (discarded). An outcome already in is
        discarded and counted late."""
        found = self.ahead.get(agent_id, {}).pop(task_id, None)
        if found is None:
            return
        lease_id, entry = found
        self._ahead_ids.discard(lease_id)
        if self._early.pop(lease_id, None) is not None:
            self._late += 1  # it ran there; its outcome is dropped, the task runs elsewhere
        held = self._held.get(agent_id)
        if held is not None:
            held.pop(lease_id, None)
        self._revoked.append(lease_id)
        self._withdrawn += (agent_id, entry)
        self.withdrawals += 1
        self._wake()

    def _issue(self, agent_id: str, task: Task, attempt: int) -> tuple[str, str]:
        """Queue a new lease of `task` for the worker; its id and entry."""
        lease_id = f"{self._tag}{next(self._ids)}"
        deadline = task.deadline
        unix = "null" if deadline is None else repr(deadline + time.time() - self._clock())
        timeout = self._timeout()
        entry = (
            f'{{"task":{encode_basestring_ascii(task.id)},'
            f'"lease":"{lease_id}","attempt":{attempt},"deadline":{unix},'
            f'"timeout":{"null" if timeout is None else repr(timeout)},'
            f'"payload":{self._payload_of(task.id)}}}'
        )
        self._pending.append((agent_id, lease_id, task.id, entry))
        held = self._held.get(agent_id)
        if held is None:
            held = self._held[agent_id] = {}
        held[lease_id] = None
        self._wake()
        return lease_id, entry

    def take(self) -> Handout | None:
        """What `lease.lua` should do next, for the writer; None when nothing."""
        if not (self._pending or self._revoked or self._voided or self._late):
            return None
        handout = Handout(self._pending, self._revoked, self._voided, self._late, self._withdrawn)
        self._pending, self._revoked, self._voided, self._late = [], [], [], 0
        self._withdrawn = []
        return handout

    def ended(self, agent_id: str, lease_id: str, *, revoke: bool) -> None:
        """An attempt is over: forget its lease; `revoke` (no outcome came) deletes it in Redis
        too, so a late report of it is refused there."""
        self._waiting.pop(lease_id, None)
        self.direct.pop(lease_id, None)
        held = self._held.get(agent_id)
        if held is not None:
            held.pop(lease_id, None)
        if revoke:
            self._revoked.append(lease_id)
            self._wake()

    def fail_agent(self, agent_id: str, error: BaseException) -> int:
        """Fail every attempt leased to one worker (lost, restarted or gone) with `error`,
        revoke the leases and void its ready list; the number failed. Direct attempts go to
        `on_lost`."""
        held = self._held.pop(agent_id, None) or {}
        # leases ahead: no attempt awaits them (their tasks are re-routed from the agent's
        # queue), so they are only forgotten; its ready list is voided below
        for lease_id, _ in (self.ahead.pop(agent_id, None) or {}).values():
            self._ahead_ids.discard(lease_id)
            self._early.pop(lease_id, None)
        failed = 0
        lost: list[tuple[str, Direct]] = []
        for lease_id in held:
            future = self._waiting.pop(lease_id, None)
            if future is not None and not future.done():
                future.set_exception(error)
                failed += 1
            attempt = self.direct.pop(lease_id, None)
            if attempt is not None:
                lost.append((lease_id, attempt))
        self._revoked.extend(held)
        self._voided.append(agent_id)
        self._wake()
        if lost and self.on_lost is not None:
            self.on_lost(lost, error)
        return failed + len(lost)

    def revoke_direct(self) -> None:
        """Revoke the leases of every direct attempt still waiting (the balancer stopped and
        ended them), so their late reports are refused."""
        for lease_id, (_, agent_id, _) in list(self.direct.items()):
            self.ended(agent_id, lease_id, revoke=True)

    # -- outcomes -----------------------------------------------------------------------------
    async def pump_outcomes(self, wait: float = 1.0) -> None:
        """Pop outcomes (up to `BATCH` per blocking read): settle the direct attempts' in one
        batch, resolve the waiting attempts, keep those of leases ahead for their start, and
        count the rest as late."""
        outcomes = Taker(
            self._redis, self.keys, self.keys.outcomes, token=self._token, wait=wait, linger=LINGER
        )
        try:
            await self._pump(outcomes)
        finally:
            outcomes.close()

    async def _pump(self, outcomes: Taker) -> None:
        waiting, direct, ahead, early = self._waiting, self.direct, self._ahead_ids, self._early
        while True:
            late = 0
            settled: list[tuple[str, Direct, dict[str, Any]]] = []
            for outcome in await outcomes.take():
                lease_id = outcome.get("lease")
                if not isinstance(lease_id, str):
                    late += 1
                    continue
                attempt = direct.pop(lease_id, None)
                if attempt is not None:
                    settled.append((lease_id, attempt, outcome))
                    continue
                future = waiting.pop(lease_id, None)
                if future is not None and not future.done():
                    future.set_result(outcome)
                elif future is None and lease_id in ahead and lease_id not in early:
                    early[lease_id] = outcome  # ran ahead of its start here
                else:
                    late += 1
            if settled and self.settle is not None:
                self.settle(settled)
            if late:
                self._late += late
                self._wake()


@dataclass(frozen=True, slots=True)
class Handout:
    """One `lease.lua` call's worth: new leases, revoked lease ids, agents whose ready list to
    void, outcomes discarded, prefetched entries to take out of ready lists (agent id, entry,
    agent id, entry, ...)."""

    leases: list[Issued]
    revoked: list[str]
    voided: list[str]
    late: int
    withdrawn: list[str]

    def args(self, token: str, epoch: int) -> list[Any]:
        """lease.lua's ARGV (see its header): the new leases grouped by worker, each value an
        argument of its own."""
        groups: dict[str, tuple[list[str], list[str]]] = {}
        for agent_id, lease_id, task_id, entry in self.leases:
            group = groups.get(agent_id)
            if group is None:
                group = groups[agent_id] = ([], [])
            group[0].extend((lease_id, f"{agent_id} {task_id} {epoch}"))
            group[1].append(entry)
        out: list[Any] = [token, epoch, self.late, len(groups), len(self.revoked)]
        out += (len(self.voided), len(self.withdrawn) // 2)
        out += self.voided
        for agent_id, (pairs, entries) in groups.items():
            out += (agent_id, len(entries))
            out += pairs
            out += entries
        out += self.revoked
        out += self.withdrawn
        return out


class RedisAgent:
    """The Balancer's handler for one worker: lease the task out, await the worker's outcome."""

    def __init__(self, agent_id: str, desk: LeaseDesk) -> None:
        self.id = agent_id
        self.desk = desk

    async def __call__(self, task: Task) -> Any:
        desk, agent_id = self.desk, self.id
        lease_id, future = desk.lease(agent_id, task)
        try:
            outcome = await future
        finally:
            desk.ended(agent_id, lease_id, revoke=not future.done() or future.cancelled())
        return _settle(outcome)


def _settle(outcome: dict[str, Any]) -> Any:
    """The handler's return value for an outcome, or the exception the runtime understands;
    the worker's usage figures are reported for the attempt, and the time its handler ran there
    (`runtime`) is what the leader learns the worker's speed from: the round trip through Redis
    is not the worker's doing."""
    runtime = outcome.get("runtime")
    if isinstance(runtime, int | float) and not isinstance(runtime, bool):
        report_runtime(float(runtime))
    usage = outcome.get("usage")
    if isinstance(usage, dict) and usage:
        fields = ("input_tokens", "output_tokens", "model", "cost")
        try:
            report_usage(**{k: usage.get(k) for k in fields})
        except (SwarmBalancerError, TypeError) as exc:
            log.warning("task %s: usage not recorded (%s)", outcome.get("task"), exc)
    if outcome.get("ok"):
        return outcome.get("result")
    error = RemoteError(str(outcome.get("error") or "failed"))
    if outcome.get("retryable") is False:
        raise NonRetryable(error)
    seconds = outcome.get("retry_after")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        try:
            rest = RetryAfter(seconds, error)
        except ValueError:  # negative or infinite: an ordinary failure
            rest = None
        if rest is not None:
            raise rest
    raise error
