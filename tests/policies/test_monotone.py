"""MonotoneQueue: the (time, seq) queue behind fifo and aging, checked against a sorted list."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from swarmbalancer.model import Task
from swarmbalancer.policies.disciplines.monotone import MonotoneQueue

# an operation: push at a time (mostly growing, sometimes older), pop, discard one, peek
ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(-3, 6)),
        st.tuples(st.just("pop"), st.just(0)),
        st.tuples(st.just("discard"), st.integers(0, 400)),
        st.tuples(st.just("peek"), st.just(0)),
    ),
    max_size=400,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_it_always_gives_the_smallest_time_then_seq_like_a_sorted_list(script: list) -> None:
    queue = MonotoneQueue()
    model: dict[str, tuple[float, int, Task]] = {}
    now, made = 0.0, 0
    for op, arg in script:
        if op == "push":
            now += max(arg, 0)
            time = now + min(arg, 0)  # a negative arg pushes an older time (stolen, aged)
            made += 1
            task = Task(id=f"t{made}")
            queue.push(time, task)
            model[task.id] = (time, task.seq, task)
        elif op == "pop":
            expect = min(model.values(), key=lambda e: (e[0], e[1]), default=None)
            got = queue.pop_task()
            assert got is (None if expect is None else expect[2])
            if got is not None:
                del model[got.id]
        elif op == "discard":
            tid = f"t{arg}"
            got = queue.discard(tid)
            assert got is (model.pop(tid)[2] if tid in model else None)
        else:
            head = queue.peek()
            expect = min(model.values(), key=lambda e: (e[0], e[1]), default=None)
            if expect is None:
                assert head is None
            else:
                assert head == ((expect[0], expect[1]), expect[2])
        assert len(queue) == len(model)
        assert all(tid in queue for tid in model)
    ordered = [e[2] for e in sorted(model.values(), key=lambda e: (e[0], e[1]))]
    assert queue.ordered() == ordered
    assert {t.id for t in queue} == set(model)


def test_a_task_can_be_queued_only_once_and_again_after_it_left() -> None:
    queue, task = MonotoneQueue(), Task(id="x")
    queue.push(1.0, task)
    try:
        queue.push(2.0, task)
    except ValueError as exc:
        assert "already queued" in str(exc)
    else:
        raise AssertionError("a second push of a queued task must fail")
    assert queue.discard("x") is task
    queue.push(0.5, task)  # older than the last key, after the deque emptied: still found
    assert queue.peek() == ((0.5, task.seq), task) and queue.pop_task() is task
    assert queue.pop_task() is None and len(queue) == 0


def test_removals_in_the_middle_are_compacted_so_memory_stays_bounded() -> None:
    queue = MonotoneQueue()
    tasks = [Task(id=f"t{i}") for i in range(10_000)]
    for i, task in enumerate(tasks):
        queue.push(float(i), task)
    for task in tasks[1:-1]:
        queue.discard(task.id)
    assert len(queue._order) <= 4 * 2 + 2 * 64 + 2  # the bound is the point
    assert queue.pop_task() is tasks[0] and queue.pop_task() is tasks[-1]
