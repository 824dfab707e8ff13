"""Request bodies: at most the limit (413 beyond it, declared or not), JSON only (415)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from servicehelpers import serving
from swarmbalancer.service import ServeSettings


@pytest.mark.timeout(10)
def test_an_oversized_body_is_a_413_and_reaches_no_parser() -> None:
    async def main() -> None:
        async with serving(ServeSettings(max_body_bytes=1024)) as (_, client):
            big = {"payload": "x" * 2000}
            reply = await client.post("/v1/tasks", json=big)
            assert reply.status_code == 413
            assert reply.json()["detail"] == "request body larger than 1024 bytes"

            async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
                for _ in range(3):
                    yield b'{"payload": "' + b"x" * 500

            streamed = await client.post(
                "/v1/tasks", content=chunks(), headers={"Content-Type": "application/json"}
            )
            assert streamed.status_code == 413
            fits = await client.post("/v1/tasks", json={"payload": "x" * 900})
            assert fits.status_code == 201
            assert (await client.get("/v1/report")).json()["accepted"] == 1

    asyncio.run(main())


@pytest.mark.timeout(10)
def test_a_body_that_is_not_json_is_a_415() -> None:
    async def main() -> None:
        async with serving() as (_, client):
            form = await client.post("/v1/tasks", data={"payload": "1"})
            assert form.status_code == 415
            pickled = await client.post(
                "/v1/tasks",
                content=b"\x80\x04K\x01.",
                headers={"Content-Type": "application/python-pickle"},
            )
            assert pickled.status_code == 415
            broken = await client.post(
                "/v1/tasks", content=b"{", headers={"Content-Type": "application/json"}
            )
            assert broken.status_code == 422

    asyncio.run(main())
