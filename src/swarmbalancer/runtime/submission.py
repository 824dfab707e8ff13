"""Turning submit's arguments into accepted tasks: validation, batches' checks, idempotency keys
and waiting for room under `maxQueueSize`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mypy_extensions import mypyc_attr

from swarmbalancer.errors import NotRunning, QueueFull, TaskRejected
from swarmbalancer.model import Task, plain_task
from swarmbalancer.runtime.durability import Durability
from swarmbalancer.runtime.handles import TaskHandle
from swarmbalancer.runtime.jobs import Job, check_unique_ids, make_task, merged


def make_batch(
    items: Iterable[Any],
    keywords: dict[str, Any],
    now: float,
    make_item: Callable[[Any, dict[str, Any], float], Task],
    prefix: str,
    ids: Iterator[int],
    retries: int,
) -> tuple[list[Task], bool]:
    """A batch's validated tasks (`make_item` validates an item with keywords or a Job; a
    payload alone becomes a plain task with the next id `prefix`-n), and whether all are plain:
    those have fresh generated ids, so the batch's id checks can be skipped. `Balancer` and
    `Client` both build their batches here."""
    if keywords:
        return [make_item(item, keywords, now) for item in items], False
    tasks: list[Task] = []
    plain = True
    for item in items:
        if isinstance(item, Job):
            tasks.append(make_item(item, keywords, now))
            plain = False
        else:
            tasks.append(plain_task(f"{prefix}-{next(ids)}", item, retries, now))
    return tasks, plain


@mypyc_attr(allow_interpreted_subclasses=True)  # Balancer's subclasses
class Submission(Durability):
    """What `submit`, `submit_many` and `map` share: making, checking and accepting tasks."""

    def _check_running(self) -> None:
        if self._loop is None:
            raise NotRunning("the balancer is not running: use `async with balancer:` first")

    def _make(self, payload: Any, now: float, **fields: Any) -> Task:
        """A validated task (not yet accepted) from submit's keywords; every bad field raises
        TaskRejected naming it."""
        return make_task(
            payload,
            now,
            new_id=self._new_id,
            default_retries=self.config.max_retries,
            clock="now() is",
            relative_hint=(
                "deadlines are absolute on Balancer.now(), use `within` for a relative one"
            ),
            **fields,
        )

    def _new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def _make_item(self, item: Any, keywords: dict[str, Any], now: float) -> Task:
        payload, fields = merged(item, keywords)
        return self._make(payload, now, **fields)

    def _make_batch(
        self, items: Iterable[Any], keywords: dict[str, Any], now: float
    ) -> tuple[list[Task], bool]:
        """`make_batch` with this balancer's ids, retries and validation."""
        return make_batch(
            items, keywords, now, self._make_item, self._prefix, self._ids, self.config.max_retries
        )

    def _check_batch(self, tasks: list[Task]) -> None:
        """Refuse a batch with a task id twice, or one that cannot fit a `raise` queue."""
        check_unique_ids(tasks)
        limit = self.config.max_queue_size
        if limit is not None and self.config.queue_full == "raise":
            self._pump()
            room = limit - self._coord.queued_total()
            if len(tasks) > room:
                raise QueueFull(f"maxQueueSize: {limit} tasks, room for {max(room, 0)} more")

    def _known(self, task: Task) -> TaskHandle | None:
        """The handle of an earlier task with the same idempotency key, if any."""
        key = task.idempotency_key
        if key is None:
            return None
        return self._keyed.get(key)

    def _check_fresh(self, tasks: list[Task]) -> None:
        """Refuse a batch naming a task id already in use (generated ids never are)."""
        ours = f"{self._prefix}-"
        for task in tasks:
            if task.idempotency_key is not None or not task.id.startswith(ours):
                self._fresh(task)

    def _fresh(self, task: Task) -> TaskHandle | None:
        """The earlier handle for a repeated idempotency key; else None, after checking that a
        task id the user chose is not in use."""
        known = self._known(task)
        if known is None and self._coord.store.get(task.id) is not None:
            raise TaskRejected(f"task_id: {task.id!r} is already in use")
        return known

    def _accept(self, task: Task) -> TaskHandle:
        """Hand a validated task to the coordinator and return its new handle."""
        loop = self._loop
        assert loop is not None
        accepted = self._coord.submit(task, task.submitted_at)
        if accepted is not task:  # the store still knew the key: the first task's handle
            return self._handles.get(accepted.id) or self._finished_handle(accepted)
        if not self._outstanding:
            self._drained.clear()
        self._outstanding += 1
        return self._handle_for(task, loop)

    async def _wait_for_space(self) -> None:
        limit = self.config.max_queue_size
        if limit is None:
            return
        if self._coord.queued_total() >= limit:
            self._pump()  # start what can start, so only tasks that truly wait count
        while self._coord.queued_total() >= limit:
            if self.config.queue_full == "raise":
                raise QueueFull(f"maxQueueSize: {limit} tasks already queued")
            self._space.clear()
            await self._space.wait()
