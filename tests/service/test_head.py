"""`HEAD /metrics` (curl -I, load-balancer checks) answers with headers and logs no error."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.service.helpers import FIXTURE_LINES, ListSource, running_service, wait_for


def fixture_source(pipeline):  # type: ignore[no-untyped-def]
    return [ListSource("test:fixture", pipeline, FIXTURE_LINES)]


async def test_head_metrics_answers_headers_and_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_service(fixture_source) as (service, url):
        await wait_for(lambda: service.sources[0].stats.read > 0)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        for _ in range(3):
            reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.write(f"HEAD /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()  # as curl -I does: gone once the headers are in
            await writer.wait_closed()
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"Content-Type: text/plain; version=0.0.4" in head
        await asyncio.sleep(0.3)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
