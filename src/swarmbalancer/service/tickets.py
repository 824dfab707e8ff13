"""One-time tickets that let a browser open the event stream when the service has tokens.

A browser's `EventSource` cannot send an `Authorization` header. Rather than take the bearer
token in the stream's URL (where access logs, proxies and the browser's history would keep it),
the dashboard sends the token in a header to `POST /v1/events/session`, which answers with a
cookie holding a random ticket: HttpOnly (no script reads it), SameSite=Strict (no other site
sends it), Path=/v1/events (no other route sees it), valid for `TICKET_TTL_S` and for one stream
only. The token itself never leaves the page's memory except in that header.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict

from swarmbalancer.service.auth import Principal

#: The cookie's name, and how long a ticket may wait before it opens a stream.
COOKIE = "swarmbalancer_stream"
TICKET_TTL_S = 60.0
#: Tickets held at once; beyond it the oldest is dropped (bounded memory).
MAX_TICKETS = 1000


def _digest(ticket: str) -> bytes:
    return hashlib.sha256(ticket.encode("utf-8", "surrogatepass")).digest()


class StreamTickets:
    """Tickets by digest, each naming the caller it was issued to and when it expires."""

    def __init__(self, ttl: float = TICKET_TTL_S, limit: int = MAX_TICKETS) -> None:
        self.ttl = ttl
        self.limit = limit
        self._tickets: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tickets)

    def issue(self, principal: Principal) -> str:
        """A fresh ticket for `principal`, valid for one stream within `ttl` seconds."""
        now = time.monotonic()
        tickets = self._tickets
        while tickets and (len(tickets) >= self.limit or next(iter(tickets.values()))[1] <= now):
            tickets.popitem(last=False)  # expired or over the limit: oldest first
        ticket = secrets.token_urlsafe(32)
        tickets[_digest(ticket)] = (principal, now + self.ttl)
        return ticket

    def redeem(self, ticket: str) -> Principal | None:
        """The caller a ticket was issued to, once: None when unknown, used or expired."""
        entry = self._tickets.pop(_digest(ticket), None)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[0]
