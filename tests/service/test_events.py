"""The dashboard's event stream on a real uvicorn: history then frames that move, the same
figures as the report, tokens or a one-time ticket cookie when tokens are set, and a stream that
ends at the server's shutdown, at its age limit, and when its client goes away."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from servicehelpers import ADMIN, AGENT_A1, READ, TOKENS, Served, bearer
from swarmbalancer.config import load_config
from swarmbalancer.service import create_app
from swarmbalancer.service.auth import TokenTable
from swarmbalancer.service.demo import demo_settings
from swarmbalancer.service.tickets import COOKIE
from swarmbalancer.workload.schema import Workload, parse_workload

pytestmark = pytest.mark.timeout(30)


def small_workload() -> Workload:
    """Two agents and a few short tasks, played round after round: numbers that move."""
    return parse_workload(
        {
            "name": "small",
            "seed": 3,
            "agents": [{"id": "w", "count": 2, "capacity": 1, "speed": 1.0}],
            "tasks": {
                "count": 20,
                "work": {"dist": "constant", "value": 0.005},
                "arrival": {"process": "poisson", "rate": 200},
            },
        },
        Path.cwd(),
    )


def hosting(**settings: Any) -> Served:
    spec = small_workload()
    return Served(create_app(demo_settings(spec, load_config({"seed": 3}), **settings)))


def events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(event, data) pairs of a text/event-stream response, as they arrive."""
    kind, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif line == "" and data:
            yield kind, json.loads(data)
            kind, data = "message", ""


def wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def open_service() -> Iterator[Served]:
    with hosting(event_interval=0.2) as served:
        yield served


def test_the_stream_sends_history_then_frames_whose_numbers_move(open_service: Served) -> None:
    with httpx.stream("GET", f"{open_service.url}/v1/events", timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        received = events(response)
        kind, history = next(received)
        assert kind == "history" and isinstance(history, list) and history
        frames = []
        for kind, data in received:
            assert kind == "frame"
            frames.append(data)
            if (
                len(frames) >= 2
                and frames[-1]["totals"]["completed"] > frames[0]["totals"]["completed"]
            ):
                break
    first, last = frames[0], frames[-1]
    assert last["time"] > first["time"]
    assert {a["id"] for a in last["agents"]} == {"w-0", "w-1"}
    agent = last["agents"][0]
    assert agent["breaker"] == "closed" and agent["capacity"] == 1
    assert set(last["window"]) == {"seconds", "completed_per_s", "failed_per_s", "sojourn_ms"}
    assert last["timing"]["decision"]["samples"] > 0 and last["timing"]["flush"] is None
    assert last["strategy"] == "adaptive"


def test_a_live_frame_falls_between_two_reports_read_around_it(open_service: Served) -> None:
    """A frame is shared by every stream for one interval, so the first one may predate the
    first report: the frame compared is the first built after it."""
    before = httpx.get(f"{open_service.url}/v1/report").json()
    read_at = time.time()
    with httpx.stream("GET", f"{open_service.url}/v1/events", timeout=10) as response:
        frame = next(d for k, d in events(response) if k == "frame" and d["time"] > read_at)
    after = httpx.get(f"{open_service.url}/v1/report").json()
    for key in ("completed", "accepted", "failed", "steals"):
        assert before[key] <= frame["totals"][key] <= after[key]
    completed = {row["id"]: row["completed"] for row in after["per_agent"]}
    for agent in frame["agents"]:
        assert agent["completed"] <= completed[agent["id"]]


def test_the_page_and_its_assets_are_served_with_a_strict_policy_and_nothing_external() -> None:
    with hosting() as served:
        page = httpx.get(f"{served.url}/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "http" not in policy
        texts = [page.text]
        for name in ("dashboard.js", "dashboard.css", "favicon.svg"):
            reply = httpx.get(f"{served.url}/dashboard/{name}")
            assert reply.status_code == 200, name
            texts.append(reply.text)
        missing = httpx.get(f"{served.url}/dashboard/..%2Fapp.py")
        assert missing.status_code == 404
    for text in texts:  # the only URL is the SVG namespace, which is a name, not a fetch
        urls = {word for word in text.replace('"', " ").split() if "://" in word}
        assert urls <= {"http://www.w3.org/2000/svg"}, urls


def test_with_tokens_the_stream_takes_a_read_token_or_a_one_time_ticket_cookie() -> None:
    with hosting(tokens=TokenTable.from_json(TOKENS)) as served:
        url = f"{served.url}/v1/events"
        assert httpx.get(f"{served.url}/").status_code == 200  # the page holds no data
        for headers in ({}, bearer("x" * 32)):
            refused = httpx.get(url, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert httpx.get(url, headers=bearer(AGENT_A1)).status_code == 403
        with httpx.stream("GET", url, headers=bearer(READ), timeout=10) as response:
            assert response.status_code == 200
            assert next(events(response))[0] == "history"

        session = f"{served.url}/v1/events/session"
        assert httpx.post(session).status_code == 401
        assert httpx.post(session, headers=bearer(AGENT_A1)).status_code == 403
        issued = httpx.post(session, headers=bearer(READ))
        assert issued.status_code == 200
        cookie = issued.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/v1/events"} <= attributes
        assert "secure" not in attributes  # plain http on loopback: a secure cookie is not sent
        ticket = issued.cookies[COOKIE]
        assert READ not in cookie and ticket != READ

        with httpx.stream("GET", url, cookies={COOKIE: ticket}, timeout=10) as response:
            assert response.status_code == 200
            assert next(events(response))[0] == "history"
        again = httpx.get(url, cookies={COOKIE: ticket})  # one stream per ticket
        assert again.status_code == 401 and again.json()["field"] == "ticket"
        assert httpx.get(url, cookies={COOKIE: "forged-" + ticket}).status_code == 401
        admin = httpx.post(session, headers=bearer(ADMIN)).cookies[COOKIE]
        with httpx.stream("GET", url, cookies={COOKIE: admin}, timeout=10) as response:
            assert response.status_code == 200


def test_an_open_stream_ends_with_bye_at_shutdown_and_does_not_hold_the_server() -> None:
    served = hosting().__enter__()
    try:
        with httpx.stream("GET", f"{served.url}/v1/events", timeout=10) as response:
            received = events(response)
            assert next(received)[0] == "history"
            assert next(received)[0] == "frame"
            served.server.should_exit = True  # as Ctrl-C does
            rest = list(received)  # the stream ends rather than waiting on the server
        assert rest[-1] == ("bye", {"reason": "shutdown"})
        served.thread.join(10)
        assert not served.thread.is_alive(), "the server waited on the stream"
    finally:
        served.__exit__()


def test_a_stream_ends_at_its_age_limit_with_bye_so_the_page_renews_it() -> None:
    with hosting(event_max_s=0.6, event_interval=0.1) as served:
        feed = served.app.state.service.feed
        with httpx.stream("GET", f"{served.url}/v1/events", timeout=10) as response:
            received = list(events(response))
        kinds = [kind for kind, _ in received]
        assert kinds[0] == "history" and "frame" in kinds
        assert received[-1] == ("bye", {"reason": "renew"})
        wait_for(lambda: feed.streams == 0)


def test_a_stream_ends_when_its_client_goes_away(open_service: Served) -> None:
    feed = open_service.app.state.service.feed
    wait_for(lambda: feed.streams == 0)
    with httpx.stream("GET", f"{open_service.url}/v1/events", timeout=10) as response:
        received = events(response)  # held: a generator let go closes its connection
        next(received)
        assert feed.streams == 1
    wait_for(lambda: feed.streams == 0)  # the client closed: the stream's loop ended
