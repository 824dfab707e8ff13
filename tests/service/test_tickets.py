"""Stream tickets: each opens one stream, expires, is kept only as a digest, and the table stays
bounded however many are issued; the stream's settings are checked by name."""

from __future__ import annotations

import pytest

from swarmbalancer.errors import ConfigError
from swarmbalancer.service import ServeSettings
from swarmbalancer.service import tickets as module
from swarmbalancer.service.auth import Principal, Role
from swarmbalancer.service.tickets import StreamTickets

READER = Principal(Role.READ)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(module.time, "monotonic", fake)
    return fake


def test_a_ticket_opens_one_stream_for_the_caller_it_was_issued_to(clock: Clock) -> None:
    table = StreamTickets(ttl=60)
    ticket = table.issue(READER)
    assert len(ticket) >= 32
    assert table.redeem(ticket) == READER
    assert table.redeem(ticket) is None  # spent
    assert table.redeem("forged") is None


def test_a_ticket_expires_after_its_time_to_live(clock: Clock) -> None:
    table = StreamTickets(ttl=60)
    late = table.issue(READER)
    clock.now += 60
    fresh = table.issue(Principal(Role.ADMIN))  # issuing drops the expired ones
    assert len(table) == 1
    assert table.redeem(late) is None
    assert table.redeem(fresh) == Principal(Role.ADMIN)


def test_the_table_stays_bounded_dropping_the_oldest(clock: Clock) -> None:
    table = StreamTickets(ttl=60, limit=3)
    issued = [table.issue(READER) for _ in range(5)]
    assert len(table) == 3
    assert [table.redeem(t) is not None for t in issued] == [False, False, True, True, True]


def test_tickets_are_kept_as_digests_only(clock: Clock) -> None:
    table = StreamTickets()
    ticket = table.issue(READER)
    assert ticket.encode() not in repr(table._tickets).encode()
    assert all(len(key) == 32 for key in table._tickets)


@pytest.mark.parametrize(
    ("field", "value"),
    [("event_interval", 0), ("event_interval", float("nan")), ("event_max_s", -1.0)],
)
def test_bad_stream_settings_are_refused_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"^{field}: must be a finite number > 0"):
        ServeSettings(**{field: value})  # type: ignore[arg-type]
