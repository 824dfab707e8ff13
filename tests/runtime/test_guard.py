"""The stand-alone CircuitBreaker: context manager, decorator, fallback, settings, manual clock."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from swarmbalancer import CircuitBreaker, CircuitOpenError, ConfigError
from swarmbalancer.clock import ManualClock
from swarmbalancer.policies.breaker import BreakerState


class Boom(Exception):
    pass


async def fail() -> None:
    raise Boom


def test_async_context_manager_opens_then_half_opens_on_the_injected_clock() -> None:
    async def go() -> None:
        clock = ManualClock()
        cb = CircuitBreaker("db", clock=clock, failureThreshold=2, timeout="5s", successThreshold=1)
        for _ in range(2):
            with pytest.raises(Boom):
                async with cb:
                    raise Boom
        assert cb.state is BreakerState.OPEN
        with pytest.raises(CircuitOpenError, match="db"):
            async with cb:
                pass
        clock.advance(5)
        assert cb.state is BreakerState.HALF_OPEN
        async with cb:
            pass
        assert cb.state is BreakerState.CLOSED

    asyncio.run(go())


def test_decorator_keeps_plain_functions_plain_and_async_ones_async() -> None:
    clock = ManualClock()
    cb = CircuitBreaker(clock=clock, failure_threshold=1, fallback=lambda x: f"cached {x}")

    @cb
    def double(x: int) -> int:
        if x < 0:
            raise Boom
        return 2 * x

    assert not inspect.iscoroutinefunction(double)
    assert double(2) == 4  # called without an event loop: a plain call
    with pytest.raises(Boom):
        double(-1)
    assert cb.state is BreakerState.OPEN
    assert double(5) == "cached 5"


def test_decorator_wraps_sync_and_async_functions_and_uses_the_fallback_when_open() -> None:
    async def go() -> None:
        clock = ManualClock()
        cb = CircuitBreaker(clock=clock, failure_threshold=1, fallback=lambda x: f"cached {x}")

        @cb
        def double(x: int) -> int:
            if x < 0:
                raise Boom
            return 2 * x

        @cb
        async def triple(x: int) -> int:
            return 3 * x

        assert double(2) == 4 and await triple(2) == 6
        with pytest.raises(Boom):
            double(-1)  # the function's own error propagates, and opens the breaker
        assert double(5) == "cached 5"
        assert double.__name__ == "double"

    asyncio.run(go())


def test_call_without_fallback_raises_circuit_open() -> None:
    async def go() -> None:
        cb = CircuitBreaker(clock=ManualClock(), failure_threshold=1)
        with pytest.raises(Boom):
            await cb.call(fail)
        with pytest.raises(CircuitOpenError):
            await cb.call(fail)
        assert await cb.call(fail, fallback=lambda: "fb") == "fb"

    asyncio.run(go())


def test_excluded_exceptions_count_as_success_and_cancellation_counts_as_nothing() -> None:
    async def go() -> None:
        cb = CircuitBreaker(clock=ManualClock(), failure_threshold=1, exclude=(KeyError,))
        with pytest.raises(KeyError):
            async with cb:
                raise KeyError("missing")
        assert cb.state is BreakerState.CLOSED
        with pytest.raises(asyncio.CancelledError):
            async with cb:
                raise asyncio.CancelledError
        assert cb.state is BreakerState.CLOSED

    asyncio.run(go())


def test_slow_calls_are_measured_on_the_clock() -> None:
    async def go() -> None:
        clock = ManualClock()
        cb = CircuitBreaker(
            clock=clock,
            slowCallDuration="100ms",
            slowCallRateThreshold=1.0,
            minimumCalls=2,
            slidingWindowSize=2,
        )
        for _ in range(2):
            async with cb:
                clock.advance(0.2)
        assert cb.state is BreakerState.OPEN
        cb.reset()
        assert cb.state is BreakerState.CLOSED

    asyncio.run(go())


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"failureTreshold": 3}, "failureTreshold"),
        ({"timeout": "soon"}, "timeout"),
        ({"failure_threshold": 0}, "failure_threshold"),
    ],
)
def test_bad_settings_are_a_clear_config_error(options: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        CircuitBreaker(**options)  # type: ignore[arg-type]
