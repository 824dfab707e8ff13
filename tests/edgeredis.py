"""Fixtures of the edge's tests (worker, client, scripts): a real redis-server per module,
emptied before each test.

A test module uses them with `pytest_plugins = ["edgeredis"]`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from redisserver import RedisServer


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(module_server: RedisServer) -> RedisServer:
    """The module's server, running and empty."""
    if module_server.process is None:  # a test stopped it
        module_server.start()
    with Redis.from_url(module_server.url) as client:
        client.flushall()
    return module_server


@pytest.fixture
def sync_redis(server: RedisServer) -> Iterator[Redis]:
    client = Redis.from_url(server.url)
    try:
        yield client
    finally:
        client.close()
