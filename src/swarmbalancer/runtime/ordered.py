"""`Balancer.map`: results in submission order, as `Executor.map` gives them.

An async generator of its own module: mypyc, which compiles the balancer (scripts/native.py),
does not compile async generators, so this one stays Python and drives the balancer through its
submission methods.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from swarmbalancer.runtime.jobs import check_keywords

if TYPE_CHECKING:
    from swarmbalancer.runtime.balancer import Balancer
    from swarmbalancer.runtime.handles import TaskHandle


async def in_order(
    balancer: Balancer, payloads: Iterable[Any], keywords: dict[str, Any]
) -> AsyncIterator[Any]:
    """Submit every item (`Balancer.map`'s contract) and yield each result in turn."""
    balancer._check_running()
    check_keywords(keywords)
    limit = balancer.config.max_queue_size
    pending: deque[TaskHandle] = deque()
    try:
        if limit is None:
            pending.extend(await balancer.submit_many(payloads, **keywords))
            while pending:
                yield await pending[0]
                pending.popleft()
            return
        items = list(payloads)
        now = balancer._now()
        tasks = [balancer._make_item(item, keywords, now) for item in items]
        balancer._check_batch(tasks)
        balancer._check_fresh(tasks)
        for task in tasks:
            known = balancer._known(task)
            if known is None:
                await balancer._wait_for_space()
                task.submitted_at = balancer._now()
                known = balancer._accept(task)
                balancer._pump_soon()
            pending.append(known)
            if len(pending) >= limit:
                yield await pending[0]
                pending.popleft()
        while pending:
            yield await pending[0]
            pending.popleft()
    finally:
        for handle in pending:
            handle.cancel()
