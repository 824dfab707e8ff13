"""The embedded runtime on a durable store: store URLs, results by id, restart and recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from swarmbalancer import Balancer, Task
from swarmbalancer.config import BalancerConfig
from swarmbalancer.errors import ConfigError, StoreError, TaskFailed, TaskRejected
from swarmbalancer.store import MemoryStore, SqliteStore, open_store
from swarmbalancer.store.url import parse_sqlite_url

pytestmark = pytest.mark.timeout(30)


async def double(task: Task) -> Any:
    await asyncio.sleep(0)
    return task.payload["n"] * 2


def url(path: Path) -> str:
    return f"sqlite:///{path}"  # path is absolute, so this is sqlite:////tmp/...


def test_results_stay_readable_by_id_after_stop_and_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "swarm.db"

    async def first() -> list[str]:
        lb = Balancer({"strategy": "adaptive"}, store=url(db))
        lb.add_agent("a", double, capacity=4)
        async with lb:
            handles = [await lb.submit({"n": i}) for i in range(20)]
            assert [await h for h in handles] == [2 * i for i in range(20)]
        record = lb.result(handles[3].id)
        assert record is not None and record.state == "done" and record.result == 6
        lb.close()
        return [h.id for h in handles]

    ids = asyncio.run(first())
    lb = Balancer(store=url(db))
    records = [lb.result(i) for i in ids]
    assert [r.result for r in records if r is not None] == [2 * i for i in range(20)]
    assert lb.result("unknown") is None
    lb.close()


def test_a_new_balancer_finishes_what_the_previous_one_left_unfinished(tmp_path: Path) -> None:
    db = tmp_path / "swarm.db"

    async def submit_without_agents() -> None:
        lb = Balancer(store=url(db))
        await lb.start()
        for i in range(10):
            await lb.submit({"n": i}, task_id=f"t{i}", idempotency_key=f"k{i}")
        await lb.stop(drain=False)  # nobody ran them: they are parked, and durable
        lb.close()

    async def resume() -> None:
        lb = Balancer(store=url(db))
        assert lb.outstanding == 10
        lb.add_agent("a", double, capacity=2)
        async with lb:
            await lb.join()
            again = await lb.submit({"n": 99}, idempotency_key="k3")
            assert again.id == "t3" and await again == 6  # the first task's stored result
        assert lb.report()["completed"] == 10
        lb.close()

    asyncio.run(submit_without_agents())
    asyncio.run(resume())
    lb = Balancer(store=url(db))
    assert lb.outstanding == 0
    assert all(lb.result(f"t{i}").result == 2 * i for i in range(10))  # type: ignore[union-attr]
    lb.close()


def test_submit_returns_once_the_task_is_in_the_file(tmp_path: Path) -> None:
    async def main() -> None:
        lb = Balancer(store=url(tmp_path / "s.db"))
        store = lb.coordinator.store
        assert isinstance(store, SqliteStore)
        await lb.start()
        handle = await lb.submit({"n": 1})
        row = store._db.execute("SELECT state FROM tasks WHERE id = ?", (handle.id,))
        assert row.fetchone() == ("waiting",)
        await lb.stop(drain=False)
        lb.close()

    asyncio.run(main())


def test_a_payload_that_is_not_json_or_too_large_is_rejected_naming_payload(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        lb = Balancer({"maxPayloadBytes": 100}, store=url(tmp_path / "s.db"))
        lb.add_agent("a", double)
        async with lb:
            with pytest.raises(TaskRejected, match=r"^payload: not JSON"):
                await lb.submit({"n": object()})
            with pytest.raises(TaskRejected, match=r"^payload: .*maxPayloadBytes"):
                await lb.submit({"n": 1, "pad": "x" * 200})
            assert lb.outstanding == 0
            assert await (await lb.submit({"n": 2})) == 4
        lb.close()

    asyncio.run(main())


def test_a_second_balancer_on_the_same_file_is_refused(tmp_path: Path) -> None:
    first = Balancer(store=url(tmp_path / "s.db"))
    with pytest.raises(StoreError, match="in use"):
        Balancer(store=url(tmp_path / "s.db"))
    first.close()
    Balancer(store=url(tmp_path / "s.db")).close()


@pytest.mark.parametrize(
    "bad",
    [
        "redis://localhost:notaport",
        "redis://localhost/0?swarm=two words",
        "sqlite://",
        "sqlite:///",
        "sqlite://host/x.db",
        "sqlite:///x.db?synchronous=sometimes",
        "sqlite:///x.db?journal=off",
        "sqlite:///dir/",
        "memoryy",
    ],
)
def test_a_malformed_store_url_is_a_config_error_naming_store(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^store: "):
        Balancer(store=bad)


def test_store_urls_name_relative_and_absolute_files_and_the_sync_level(tmp_path: Path) -> None:
    assert parse_sqlite_url("sqlite:///data/swarm.db") == (Path("data/swarm.db"), "normal")
    assert parse_sqlite_url("sqlite:////var/swarm.db?synchronous=FULL") == (
        Path("/var/swarm.db"),
        "full",
    )
    cfg = BalancerConfig(result_retention=5.0)
    assert isinstance(open_store("memory", cfg), MemoryStore)
    store = open_store(url(tmp_path / "x.db") + "?synchronous=full", cfg)
    assert isinstance(store, SqliteStore) and store.synchronous == "full"
    store.close()


def test_a_memory_balancer_keeps_accepting_any_payload_and_records_no_results() -> None:
    async def main() -> None:
        lb = Balancer()
        lb.add_agent("a", lambda task: task.payload)
        marker = object()
        async with lb:
            handle = await lb.submit(marker)
            assert await handle is marker
        assert lb.result(handle.id) is None

    asyncio.run(main())


def states(store: SqliteStore) -> dict[str, tuple[str, int]]:
    """id -> (state, attempt) as the file has them (read on the store's own, locking connection)."""
    found = store._db.execute("SELECT id, state, attempt FROM tasks").fetchall()
    return {r[0]: (r[1], r[2]) for r in found}


def test_a_cancelled_task_is_recorded_cancelled_and_not_recovered(tmp_path: Path) -> None:
    db = tmp_path / "s.db"

    async def main() -> None:
        release = asyncio.Event()

        async def blocked(task: Task) -> None:
            await release.wait()

        lb = Balancer(store=url(db))
        lb.add_agent("a", blocked, capacity=1)
        async with lb:
            running = await lb.submit(None, task_id="running")
            waiting = await lb.submit(None, task_id="waiting")
            await asyncio.sleep(0)  # "running" starts
            assert running.task.state.value == "running"
            assert waiting.cancel() and running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            record = lb.result("waiting")
            assert record is not None and record.state == "cancelled" and record.finished
            release.set()
        store = lb.coordinator.store
        assert isinstance(store, SqliteStore)
        assert states(store) == {"running": ("cancelled", 1), "waiting": ("cancelled", 0)}
        lb.close()

    asyncio.run(main())
    again = Balancer(store=url(db))
    assert again.outstanding == 0
    again.close()


def test_a_task_failed_by_the_park_timeout_is_recorded_failed(tmp_path: Path) -> None:
    db = tmp_path / "s.db"

    async def main() -> None:
        lb = Balancer({"parkTimeout": 0.01}, store=url(db))  # no agent: the task parks
        async with lb:
            handle = await lb.submit(None, task_id="parked")
            with pytest.raises(TaskFailed, match="parkTimeout"):
                await handle
        store = lb.coordinator.store
        assert isinstance(store, SqliteStore)
        assert states(store) == {"parked": ("failed", 0)}
        lb.close()

    asyncio.run(main())
    again = Balancer(store=url(db))
    record = again.result("parked")
    assert again.outstanding == 0 and record is not None and record.state == "failed"
    again.close()


def test_submit_many_writes_the_whole_batch_in_one_flush_before_it_returns(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        lb = Balancer(store=url(tmp_path / "s.db"))
        store = lb.coordinator.store
        assert isinstance(store, SqliteStore)
        written: list[int] = []
        flush = store.flush

        def counting(now: float) -> None:
            if store._new:
                written.append(len(store._new))
            flush(now)

        store.flush = counting  # type: ignore[method-assign]
        await lb.start()
        handles = await lb.submit_many([{"n": i} for i in range(50)], tenant="t1")
        assert written == [50]
        assert set(states(store)) == {h.id for h in handles}
        assert {s for s, _ in states(store).values()} == {"waiting"}
        await lb.stop(drain=False)
        lb.close()

    asyncio.run(main())


def test_stopping_without_draining_leaves_a_running_task_to_the_next_balancer(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"

    async def first() -> None:
        async def forever(task: Task) -> None:
            await asyncio.Event().wait()

        lb = Balancer(store=url(db))
        lb.add_agent("a", forever)
        await lb.start()
        handle = await lb.submit({"n": 5}, task_id="t")
        await asyncio.sleep(0)
        await lb.stop(drain=False)
        assert handle.cancelled() and lb.report()["cancelled"] == 1  # in this process
        store = lb.coordinator.store
        assert isinstance(store, SqliteStore)
        assert states(store) == {"t": ("running", 1)}  # in the file: unfinished
        lb.close()

    async def second() -> None:
        lb = Balancer(store=url(db))
        assert lb.outstanding == 1
        lb.add_agent("a", double)
        async with lb:
            await lb.join()
        record = lb.result("t")
        assert record is not None and record.state == "done" and record.result == 10
        assert record.attempt == 2  # the interrupted attempt counts
        lb.close()

    asyncio.run(first())
    asyncio.run(second())
