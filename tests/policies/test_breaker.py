"""The breaker state machine: only legal transitions, thresholds and timeouts as stated."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from swarmbalancer.policies.breaker import (
    LEGAL_TRANSITIONS,
    BreakerSettings,
    BreakerState,
    CircuitBreakerPolicy,
)

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def breaker(**kw: object) -> CircuitBreakerPolicy:
    options: dict[str, object] = {"failure_threshold": 3, "success_threshold": 2, "timeout": 10.0}
    options.update(kw)
    return CircuitBreakerPolicy(BreakerSettings(**options))  # type: ignore[arg-type]


def test_opens_after_consecutive_failures_only() -> None:
    b = breaker()
    b.on_failure(0)
    b.on_failure(0)
    b.on_success(0)  # resets the run of failures
    b.on_failure(0)
    b.on_failure(0)
    assert b.state(0) is CLOSED
    b.on_failure(1)
    assert b.state(1) is OPEN and not b.allow(1)


def test_half_open_after_timeout_then_closes_after_successes() -> None:
    b = breaker()
    for _ in range(3):
        b.on_failure(5)
    assert b.state(14.999) is OPEN
    assert b.reopen_at == 15
    assert b.state(15) is HALF
    assert b.allow(15) and b.allow(15)
    assert not b.allow(15), "half-open admits only the probe budget"
    b.on_success(16)
    assert b.state(16) is HALF
    b.on_success(17)
    assert b.state(17) is CLOSED
    assert [(s, t) for _, s, t in b.transitions] == [(CLOSED, OPEN), (OPEN, HALF), (HALF, CLOSED)]
    assert b.transitions[1][0] == 15, "the transition is stamped when the timeout fell due"


def test_a_failure_in_half_open_reopens_and_restarts_the_timeout() -> None:
    b = breaker()
    for _ in range(3):
        b.on_failure(0)
    assert b.allow(10)
    b.on_failure(11)
    assert b.state(20.5) is OPEN
    assert b.state(21) is HALF


def test_released_probe_permits_can_be_used_again() -> None:
    b = breaker(half_open_max_calls=1)
    for _ in range(3):
        b.on_failure(0)
    assert b.allow(10) and not b.allow(10)
    b.release(10)
    assert b.allow(10)


def test_failure_rate_over_the_sliding_window_opens_without_a_consecutive_run() -> None:
    def run(threshold: float) -> CircuitBreakerPolicy:
        b = breaker(
            failure_threshold=100,
            failure_rate_threshold=threshold,
            sliding_window_size=10,
            minimum_calls=10,
        )
        for i in range(9):
            (b.on_failure if i % 2 == 0 else b.on_success)(i)
        assert b.state(9) is CLOSED, "fewer than minimum_calls outcomes never open it"
        b.on_success(9)  # 5 failures in a full window of 10
        return b

    assert run(0.5).state(9) is OPEN, "a rate equal to the threshold opens it"
    b = run(0.6)
    assert b.state(9) is CLOSED
    b.on_failure(10)  # the oldest outcome (a failure) slides out: still 5 of 10
    assert b.state(10) is CLOSED
    b.on_failure(11)  # the oldest (a success) slides out: 6 of 10
    assert b.state(11) is OPEN


def test_slow_calls_open_it_too() -> None:
    b = breaker(slow_call_duration=1.0, slow_call_rate_threshold=0.8, minimum_calls=5)
    for i in range(4):
        b.on_success(i, duration=2.0)
    assert b.state(4) is CLOSED
    b.on_success(5, duration=1.5)
    assert b.state(5) is OPEN


def test_outcomes_of_calls_started_before_it_opened_are_ignored_while_open() -> None:
    b = breaker()
    for _ in range(3):
        b.on_failure(0)
    b.on_success(1)
    b.on_failure(2)
    assert b.state(2) is OPEN and b.opened_at == 0


def test_a_hold_keeps_it_open_until_the_given_time_then_half_opens() -> None:
    b = breaker(failure_threshold=5, timeout=1.0)
    b.hold(10.0, 13.0)
    assert b.state(10.0) is OPEN and b.reopen_at == 13.0
    assert not b.allow(12.9)
    b.hold(11.0, 12.0)  # a shorter hold does not shorten the one running
    assert b.state(12.5) is OPEN
    assert b.state(13.0) is HALF
    assert all((s, t) in LEGAL_TRANSITIONS for _, s, t in b.transitions)


def test_reset_closes_it_through_legal_steps() -> None:
    b = breaker()
    for _ in range(3):
        b.on_failure(0)
    b.reset(1)
    assert b.state(1) is CLOSED
    assert all((s, t) in LEGAL_TRANSITIONS for _, s, t in b.transitions)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("failure_threshold", 0),
        ("timeout", 0),
        ("failure_rate_threshold", 1.5),
        ("minimum_calls", 50),
        ("half_open_max_calls", 0),
    ],
)
def test_bad_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        BreakerSettings(**{field: value})  # type: ignore[arg-type]


class BreakerMachine(RuleBasedStateMachine):
    """Random calls, outcomes and clock moves: every transition is legal and the model agrees."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.b = breaker(failure_threshold=2, success_threshold=2, timeout=5.0)
        self.fails = 0  # consecutive failures while CLOSED (model)
        self.held_until = 0.0  # the latest forced hold (model)

    @rule(dt=st.floats(min_value=0, max_value=8))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def success(self) -> None:
        before = self.b.state(self.now)
        self.b.on_success(self.now)
        if before is CLOSED:
            self.fails = 0
            assert self.b.state(self.now) is CLOSED

    @rule()
    def failure(self) -> None:
        before = self.b.state(self.now)
        self.b.on_failure(self.now)
        after = self.b.state(self.now)
        if before is CLOSED:
            self.fails += 1
            assert (after is OPEN) == (self.fails >= 2)
        elif before is HALF:
            assert after is OPEN
        else:
            assert after is OPEN
        if after is OPEN:
            self.fails = 0

    @rule(seconds=st.floats(min_value=0, max_value=20))
    def hold(self, seconds: float) -> None:
        before = self.b.reopen_at
        self.b.hold(self.now, self.now + seconds)
        if self.now + seconds > self.now:
            assert self.b.state(self.now) is OPEN
            reopen = self.b.reopen_at
            assert reopen is not None and reopen >= self.now + seconds
            assert before is None or reopen >= before, "a hold never shortens an open period"
            self.held_until = max(self.held_until, self.now + seconds)
        self.fails = 0 if self.b.state(self.now) is OPEN else self.fails

    @precondition(lambda self: True)
    @rule()
    def probe(self) -> None:
        state = self.b.state(self.now)
        allowed = self.b.allow(self.now)
        if state is CLOSED:
            assert allowed
        if state is OPEN:
            assert not allowed

    @invariant()
    def only_legal_transitions(self) -> None:
        times = [t for t, _, _ in self.b.transitions]
        assert times == sorted(times)
        for _, source, target in self.b.transitions:
            assert (source, target) in LEGAL_TRANSITIONS
        pairs = list(self.b.transitions)
        for (_, _, t1), (_, s2, _) in itertools.pairwise(pairs):
            assert t1 == s2, "transitions chain: each starts where the last ended"

    @invariant()
    def open_never_outlives_its_timeout(self) -> None:
        if self.b.state(self.now) is OPEN:
            assert self.b.opened_at is not None
            assert self.now < self.b.opened_at + 5.0 or self.now < self.held_until


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


@given(st.lists(st.booleans(), max_size=60))
def test_closed_breaker_opens_exactly_at_the_first_run_of_threshold_failures(
    outcomes: list[bool],
) -> None:
    b = breaker(failure_threshold=3, timeout=1e9)
    run = 0
    expected_open = False
    for ok in outcomes:
        if not expected_open:
            run = 0 if ok else run + 1
            expected_open = run >= 3
        (b.on_success if ok else b.on_failure)(0.0)
    assert (b.state(0.0) is OPEN) == expected_open
