"""The circuit breaker as a pure state machine: CLOSED, OPEN, HALF_OPEN. Time is passed in.

CLOSED -> OPEN after `failure_threshold` consecutive failures, or (as resilience4j does) once at
least `minimum_calls` outcomes fill the window of the last `sliding_window_size` calls and the
failure rate reaches `failure_rate_threshold` or the slow-call rate reaches
`slow_call_rate_threshold`. OPEN -> HALF_OPEN once `timeout` has passed. HALF_OPEN admits at most
`half_open_max_calls` probes at once; `success_threshold` successes close it, any failure reopens
it. `hold(now, until)` forces OPEN until `until` (a retry-after hint), then HALF_OPEN as usual.
Outcomes of calls that were admitted before the breaker opened are ignored while it is open.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from swarmbalancer.config import BalancerConfig


class BreakerState(StrEnum):
    """The three states of a breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


# enum members as module constants: on Python 3.11 reading one off its class costs ~70 ns
_CLOSED = BreakerState.CLOSED
_HALF_OPEN = BreakerState.HALF_OPEN
_OPEN = BreakerState.OPEN


#: Every transition a breaker may make; the property tests check nothing else happens.
LEGAL_TRANSITIONS = frozenset(
    {
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    }
)


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Thresholds and timings of a breaker (see docs/configuration.md)."""

    failure_threshold: int = 5
    success_threshold: int = 3
    timeout: float = 30.0
    failure_rate_threshold: float | None = None
    sliding_window_size: int = 20
    minimum_calls: int = 10
    slow_call_duration: float | None = None
    slow_call_rate_threshold: float = 1.0
    half_open_max_calls: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "failure_threshold",
            "success_threshold",
            "sliding_window_size",
            "minimum_calls",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a whole number >= 1, got {value!r}")
        if self.timeout <= 0:
            raise ValueError(f"timeout: must be > 0, got {self.timeout!r}")
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 1:
                raise ValueError(f"{name}: must be in (0, 1], got {value!r}")
        if self.slow_call_duration is not None and self.slow_call_duration <= 0:
            raise ValueError(f"slow_call_duration: must be > 0, got {self.slow_call_duration!r}")
        if self.half_open_max_calls is not None and self.half_open_max_calls < 1:
            raise ValueError(f"half_open_max_calls: must be >= 1, got {self.half_open_max_calls!r}")
        if self.minimum_calls > self.sliding_window_size:
            raise ValueError("minimum_calls: must not exceed sliding_window_size")

    @property
    def probe_budget(self) -> int:
        """Probes admitted at once in HALF_OPEN."""
        return self.half_open_max_calls or self.success_threshold

    @classmethod
    def from_config(cls, cfg: BalancerConfig) -> BreakerSettings:
        return cls(
            failure_threshold=cfg.failure_threshold,
            success_threshold=cfg.success_threshold,
            timeout=cfg.timeout,
            failure_rate_threshold=cfg.failure_rate_threshold,
            sliding_window_size=cfg.sliding_window_size,
            minimum_calls=cfg.minimum_calls,
            slow_call_duration=cfg.slow_call_duration,
            slow_call_rate_threshold=cfg.slow_call_rate_threshold,
            half_open_max_calls=cfg.half_open_max_calls,
        )


class CircuitBreakerPolicy:
    """One breaker's state; every method takes `now` and nothing reads a clock."""

    __slots__ = (
        "_consecutive",
        "_failures",
        "_held_until",
        "_probes",
        "_slow",
        "_state",
        "_successes",
        "_window",
        "_windowless",
        "opened_at",
        "settings",
        "transitions",
    )

    def __init__(self, settings: BreakerSettings | None = None) -> None:
        self.settings = settings or BreakerSettings()
        self._state = _CLOSED
        self._consecutive = 0
        self._successes = 0
        self._probes = 0
        self._window: deque[tuple[bool, bool]] = deque(maxlen=self.settings.sliding_window_size)
        self._failures = 0  # failed outcomes in the window
        self._slow = 0  # slow outcomes in the window
        s = self.settings
        self._windowless = s.failure_rate_threshold is None and s.slow_call_duration is None
        self.opened_at: float | None = None
        self._held_until: float | None = None  # a forced hold: OPEN until then, not `timeout`
        self.transitions: deque[tuple[float, BreakerState, BreakerState]] = deque(maxlen=256)

    # -- reading ------------------------------------------------------------------------------
    def state(self, now: float) -> BreakerState:
        """The state at `now`; OPEN turns HALF_OPEN here once `timeout` has passed."""
        if self._state is _OPEN:
            reopen = self.reopen_at
            assert reopen is not None
            if now >= reopen:
                self._move(_HALF_OPEN, reopen)
        return self._state

    @property
    def state_label(self) -> str:
        """The last state entered (without applying the timeout), for reports."""
        return self._state.value

    @property
    def probe_budget(self) -> int:
        return self.settings.probe_budget

    @property
    def reopen_at(self) -> float | None:
        """When an OPEN breaker turns HALF_OPEN; None in the other states."""
        if self._state is _OPEN and self.opened_at is not None:
            if self._held_until is not None:
                return self._held_until
            return self.opened_at + self.settings.timeout
        return None

    # -- calls --------------------------------------------------------------------------------
    def allow(self, now: float) -> bool:
        """May a call start now? In HALF_OPEN a permitted call takes one of the probe permits."""
        state = self.state(now)
        if state is _CLOSED:
            return True
        if state is _OPEN or self._probes >= self.settings.probe_budget:
            return False
        self._probes += 1
        return True

    def release(self, now: float) -> None:
        """A permitted call never ran: give its probe permit back."""
        if self._state is _HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def on_success(self, now: float, duration: float | None = None) -> None:
        if self._windowless and self._state is _CLOSED:
            self._consecutive = 0  # the common case, and all that _record would do here
            return
        state = self.state(now)
        if state is _OPEN:
            return
        if state is _HALF_OPEN:
            self._probes = max(0, self._probes - 1)
            self._successes += 1
            if self._successes >= self.settings.success_threshold:
                self._move(_CLOSED, now)
            return
        self._consecutive = 0
        self._record(now, failed=False, slow=self._is_slow(duration))

    def on_failure(self, now: float, duration: float | None = None) -> None:
        state = self.state(now)
        if state is _OPEN:
            return
        if state is _HALF_OPEN:
            self._move(_OPEN, now)
            return
        self._consecutive += 1
        if self._consecutive >= self.settings.failure_threshold:
            self._move(_OPEN, now)
            return
        self._record(now, failed=True, slow=self._is_slow(duration))

    def hold(self, now: float, until: float) -> None:
        """Force OPEN until `until` (an agent asked to be left alone: "retry after"), then
        HALF_OPEN as after any timeout. A hold never shortens an OPEN period already running."""
        if until <= now:
            return
        state = self.state(now)
        if state is _OPEN:
            current = self.reopen_at
            if current is not None and current >= until:
                return
        else:
            self._move(_OPEN, now)
        self._held_until = until

    def held(self, now: float) -> bool:
        """Is the breaker forced open by a hold (`hold`) at `now`?"""
        return self._held_until is not None and now < self._held_until

    def reset(self, now: float) -> None:
        """Force CLOSED (an operator's decision), recording the transition if any."""
        if self._state is _OPEN:
            self._move(_HALF_OPEN, now)
        if self._state is _HALF_OPEN:
            self._move(_CLOSED, now)

    # -- internals ----------------------------------------------------------------------------
    def _is_slow(self, duration: float | None) -> bool:
        limit = self.settings.slow_call_duration
        return limit is not None and duration is not None and duration >= limit

    def _record(self, now: float, *, failed: bool, slow: bool) -> None:
        s = self.settings
        if s.failure_rate_threshold is None and s.slow_call_duration is None:
            return  # no rate rule configured: the window is never read
        window = self._window
        if len(window) == window.maxlen:
            old_failed, old_slow = window[0]
            self._failures -= old_failed
            self._slow -= old_slow
        window.append((failed, slow))
        self._failures += failed
        self._slow += slow
        n = len(window)
        if n < s.minimum_calls:
            return
        if (
            s.failure_rate_threshold is not None and self._failures / n >= s.failure_rate_threshold
        ) or (s.slow_call_duration is not None and self._slow / n >= s.slow_call_rate_threshold):
            self._move(_OPEN, now)

    def _move(self, target: BreakerState, now: float) -> None:
        source = self._state
        if (source, target) not in LEGAL_TRANSITIONS:
            raise AssertionError(f"illegal breaker transition {source} -> {target}")
        self._state = target
        self.transitions.append((now, source, target))
        self._probes = 0
        self._successes = 0
        self._held_until = None
        if target is _OPEN:
            self.opened_at = now
        elif target is _CLOSED:
            self._consecutive = 0
            self._window.clear()
            self._failures = self._slow = 0
            self.opened_at = None
