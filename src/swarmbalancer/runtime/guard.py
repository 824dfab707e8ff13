"""A circuit breaker around any call: an async context manager, a decorator, or `call()`.

It wraps the same pure `CircuitBreakerPolicy` the balancer uses per agent, with an injected clock,
so a test can drive it with a `ManualClock` and the states mean exactly what they mean elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from pydantic.alias_generators import to_snake

from swarmbalancer.clock import Clock, MonotonicClock
from swarmbalancer.config import parse_duration
from swarmbalancer.errors import CircuitOpenError, ConfigError
from swarmbalancer.policies.breaker import BreakerSettings, BreakerState, CircuitBreakerPolicy

P = ParamSpec("P")
R = TypeVar("R")

_FIELDS = set(BreakerSettings.__dataclass_fields__)
_DURATIONS = {"timeout", "slow_call_duration"}


def breaker_settings(options: dict[str, Any]) -> BreakerSettings:
    """Build settings from camelCase or snake_case keys; unknown keys and bad values raise."""
    values: dict[str, Any] = {}
    for key, value in options.items():
        name = to_snake(key)
        if name not in _FIELDS:
            raise ConfigError(f"{key}: unknown circuit breaker setting")
        if name in values:
            raise ConfigError(f"{key}: given twice")
        try:
            values[name] = parse_duration(value) if name in _DURATIONS else value
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    try:
        return BreakerSettings(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


class CircuitBreaker:
    """Guards calls to one dependency; opens on failures, probes after `timeout`, closes on success.

    ``exclude`` lists exception types that count as success (a 404 is not an outage).
    """

    def __init__(
        self,
        name: str = "breaker",
        *,
        clock: Clock | None = None,
        exclude: tuple[type[BaseException], ...] = (),
        fallback: Callable[..., Any] | None = None,
        **options: Any,
    ) -> None:
        self.name = name
        self.clock: Clock = clock or MonotonicClock()
        self.policy = CircuitBreakerPolicy(breaker_settings(options))
        self.exclude = exclude
        self.fallback = fallback
        self._started: list[float] = []

    # -- state ----------------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        return self.policy.state(self.clock.now())

    def reset(self) -> None:
        """Close the breaker now, whatever its state."""
        self.policy.reset(self.clock.now())

    # -- context manager ----------------------------------------------------------------------
    async def __aenter__(self) -> CircuitBreaker:
        self._enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(exc)

    def _enter(self) -> float:
        """Ask for a permit; raises CircuitOpenError when refused. Returns the start time."""
        now = self.clock.now()
        if not self.policy.allow(now):
            raise CircuitOpenError(f"circuit {self.name!r} is {self.policy.state(now).value}")
        self._started.append(now)
        return now

    def _exit(self, exc: BaseException | None) -> None:
        """Record the outcome of the call the last permit was for."""
        started = self._started.pop() if self._started else None
        now = self.clock.now()
        duration = None if started is None else now - started
        if exc is None or isinstance(exc, self.exclude):
            self.policy.on_success(now, duration)
        elif isinstance(exc, asyncio.CancelledError):
            self.policy.release(now)  # a cancelled call says nothing about the dependency
        else:
            self.policy.on_failure(now, duration)

    # -- calls --------------------------------------------------------------------------------
    async def call(
        self,
        fn: Callable[..., Any],
        *args: Any,
        fallback: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call `fn` (sync or async) through the breaker; when open, use the fallback if any.

        The fallback receives the same arguments; it runs only when the breaker refuses the call,
        not when `fn` itself fails (that error propagates so the caller sees it).
        """
        return await self._guarded(fn, args, kwargs, fallback or self.fallback)

    async def _guarded(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fallback: Callable[..., Any] | None,
    ) -> Any:
        try:
            self._enter()
        except CircuitOpenError:
            if fallback is None:
                raise
            return await _maybe_await(fallback(*args, **kwargs))
        try:
            result = await _maybe_await(fn(*args, **kwargs))
        except BaseException as exc:
            self._exit(exc)
            raise
        self._exit(None)
        return result

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a function: an async function stays async, a plain one stays plain, each
        guarded by this breaker (a plain one's fallback is called plainly too)."""
        if not inspect.iscoroutinefunction(fn):
            return self._plain(fn)

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> Any:
            return await self._guarded(fn, args, kwargs, self.fallback)

        return guarded

    def _plain(self, fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                self._enter()
            except CircuitOpenError:
                if self.fallback is None:
                    raise
                return cast(R, self.fallback(*args, **kwargs))
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._exit(exc)
                raise
            self._exit(None)
            return result

        return guarded

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.value})"


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value
