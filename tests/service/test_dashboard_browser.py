"""The dashboard in a real headless browser: Debian's chromium, driven by Playwright (never a
downloaded browser), against a real `swarmbalancer serve --demo` started as a subprocess on a
free loopback port. The demo's agents appear, live numbers change, breaker states show; with
tokens the page asks for one and the stream refuses a missing or bad one; stopping the service
ends the stream and the page says so."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from servicehelpers import AGENT_A1, READ, TOKENS, bearer
from swarmbalancer.workload.demo import DEMO

CHROMIUM = Path("/usr/bin/chromium")
#: Flags that keep chromium from reaching for the network (the test machine has none): without
#: them it stalls on connection attempts.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEMO_AGENTS = {f"{group['id']}-{i}" for group in DEMO["agents"] for i in range(int(group["count"]))}

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="chromium is not installed at /usr/bin/chromium (`make test` installs it with "
        "scripts/ensure-services; `apt-get install chromium` by hand)",
    ),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    """A `swarmbalancer serve --demo` subprocess on a free loopback port."""

    def __init__(self, workdir: Path, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        command = [sys.executable, "-m", "swarmbalancer", "serve", "--demo"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *options],
                cwd=workdir,  # no swarmbalancer.json of the checkout is read
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, f"serve exited: {self.log.read_text()}"
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"serve did not start: {self.log.read_text()}"
            time.sleep(0.1)

    def stop(self, timeout: float = 10) -> str:
        """Ctrl-C, as a user stops it; its log once it has stopped (killed, and an error, if
        it is still running after `timeout` seconds)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"serve did not stop: {self.log.read_text()}") from None
        return self.log.read_text()


@contextmanager
def serving(workdir: Path, *options: str) -> Iterator[Service]:
    service = Service(workdir, *options)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One chromium for the module, on a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new tab that records console errors, page errors and every URL it asks for."""
    tab = browser.new_page()
    tab.problems = []
    tab.requested = []
    tab.on("console", lambda m: m.type == "error" and tab.problems.append(m.text))
    tab.on("pageerror", lambda e: tab.problems.append(str(e)))
    tab.on("request", lambda r: tab.requested.append(r.url))
    try:
        yield tab
    finally:
        tab.close()


def number(page: Any, selector: str) -> float:
    return float(page.inner_text(selector).replace(",", ""))


def test_the_demo_swarm_appears_and_its_numbers_move(page: Any, tmp_path: Path) -> None:
    with serving(tmp_path) as service:
        page.goto(f"{service.url}/")
        page.wait_for_function("() => document.querySelectorAll('#agents tbody tr').length === 12")
        shown = set(
            page.eval_on_selector_all("#agents tbody tr", "rs => rs.map(r => r.dataset.agent)")
        )
        assert shown == DEMO_AGENTS
        assert page.inner_text("#status") == "live"
        badges = page.eval_on_selector_all("#agents .badge", "bs => bs.map(b => b.textContent)")
        assert len(badges) == 12 and set(badges) <= {"closed", "open", "half-open"}

        completed = number(page, "#completed")
        throughput = page.inner_text("#throughput")
        page.wait_for_function(
            "c => Number(document.getElementById('completed').textContent.replace(/,/g, '')) > c",
            arg=completed,
            timeout=15_000,
        )
        page.wait_for_function(
            "t => document.getElementById('throughput').textContent !== t",
            arg=throughput,
            timeout=15_000,
        )
        assert number(page, "#throughput") >= 0
        page.wait_for_function(
            "() => (document.querySelector('#chart-throughput path.series')?.getAttribute('d')"
            " || '').includes('L')",
            timeout=15_000,
        )
        assert page.locator("#agents .bar.load").count() == 12
        assert page.inner_text("#decision").startswith("p50 ")
    assert page.problems == []  # no script error and no blocked resource (the CSP logs those)
    origin = service.url + "/"
    assert all(url.startswith(origin) for url in page.requested), page.requested


def test_with_tokens_the_stream_refuses_a_missing_or_bad_token(page: Any, tmp_path: Path) -> None:
    token_file = tmp_path / "tokens.json"
    token_file.write_text(json.dumps(TOKENS))
    with serving(tmp_path, "--token-file", str(token_file)) as service:
        events = f"{service.url}/v1/events"
        assert httpx.get(events).status_code == 401
        assert httpx.get(events, headers=bearer("wrong-token-0123456789")).status_code == 401
        assert httpx.get(events, headers=bearer(AGENT_A1)).status_code == 403

        page.goto(f"{service.url}/")
        page.wait_for_selector("#login", state="visible")
        assert page.inner_text("#status") == "token needed"
        opened = page.evaluate(
            """() => new Promise(resolve => {
                const s = new EventSource('/v1/events');
                s.addEventListener('frame', () => { s.close(); resolve('open'); });
                s.onerror = () => { s.close(); resolve('refused'); };
            })"""
        )
        assert opened == "refused"

        page.fill("#token", "wrong-token-0123456789")
        page.click("#login button")
        page.wait_for_function(
            "() => document.getElementById('login-error').textContent.includes('does not know')"
        )
        page.fill("#token", AGENT_A1)
        page.click("#login button")
        page.wait_for_function(
            "() => document.getElementById('login-error').textContent.includes('may not read')"
        )
        assert page.get_attribute("body", "data-frames") is None  # nothing was shown

        page.fill("#token", READ)
        page.click("#login button")
        page.wait_for_function("() => document.querySelectorAll('#agents tbody tr').length === 12")
        assert page.is_hidden("#login")
        assert page.evaluate("() => document.cookie") == ""  # the ticket is HttpOnly
    assert all(READ not in url for url in page.requested)  # the token was never in a URL
    assert page.problems == [] or all("401" in p or "403" in p for p in page.problems)


def test_stopping_the_service_ends_the_stream_and_the_page_says_so(
    page: Any, tmp_path: Path
) -> None:
    service = Service(tmp_path)
    try:
        page.goto(f"{service.url}/")
        page.wait_for_function("() => Number(document.body.dataset.frames || 0) >= 2")
        log = service.stop(timeout=10)  # the open stream did not hold the shutdown
        assert "Application shutdown complete" in log and "Traceback" not in log, log
        page.wait_for_function("() => document.getElementById('status').dataset.state === 'down'")
        assert page.inner_text("#status").startswith(("service stopped", "disconnected"))
    finally:
        service.stop()
