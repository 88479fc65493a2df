"""The push receiver under hostile or broken input: bad lines cost only themselves, a batch counts once,
and no client can hold more than the configured bounds (real HTTP on loopback, bounded in time)."""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib

import aiohttp
import pytest

from exporter.pipeline import Pipeline
from exporter.sources import goldmane_push
from exporter.sources.goldmane_push import GoldmanePushSource
from exporter.sources.options import GoldmanePushOptions
from tests.sources.goldmane_flows import goldmane_flow
from tests.sources.helpers import Running, total, until

DEEP = b'{"a":' * 50_000 + b"1" + b"}" * 50_000  # RecursionError in the JSON parser


def receiver(pipeline: Pipeline, **options: object) -> GoldmanePushSource:
    return GoldmanePushSource("calico-goldmane-push:127.0.0.1:0", pipeline, "127.0.0.1", 0,
                              GoldmanePushOptions.model_validate(options))


async def post(source: GoldmanePushSource, body: bytes, **headers: str) -> tuple[int, dict[str, object]]:
    url = f"http://127.0.0.1:{source.bound_port}/flows"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, session.post(
            url, data=body, headers={"Content-Type": "application/x-ndjson", **headers}) as resp:
        return resp.status, await resp.json()


async def test_a_line_nested_too_deep_is_invalid_and_the_batch_counts_once() -> None:
    pipeline = Pipeline()
    source = receiver(pipeline)
    body = b"\n".join([goldmane_flow(packets_in=1), DEEP, goldmane_flow(packets_in=2)])
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        status, answer = await post(source, body)
    assert status == 200 and answer == {"lines": 3, "counted": 2, "invalid": 1}
    assert total(pipeline) == 3  # answered 200: Goldmane does not retry, nothing counts twice


async def test_invalid_utf8_inside_an_endpoint_costs_only_its_line() -> None:
    pipeline = Pipeline()
    source = receiver(pipeline)
    bad = goldmane_flow(packets_in=100).replace(b'"test-client', b'"test-\xff\xfeclient', 1)
    assert bad != goldmane_flow(packets_in=100)
    body = b"\n".join([goldmane_flow(packets_in=1), bad, goldmane_flow(packets_in=2)]) + b"\n"
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        status, answer = await post(source, body)
    assert status == 200 and answer == {"lines": 3, "counted": 2, "invalid": 1}
    assert total(pipeline) == 3


async def test_gzip_bomb_stops_inflating_at_the_limit() -> None:
    pipeline = Pipeline()
    source = receiver(pipeline, max_body_bytes=1 << 20)
    inflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = inflater.compress(b"\0" * (256 << 20)) + inflater.flush()  # 256 KiB inflating to 256 MiB
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        cpu = time.process_time()
        status, answer = await post(source, bomb, **{"Content-Encoding": "gzip"})
        cpu = time.process_time() - cpu
        assert status == 413 and "once inflated" in str(answer["error"])
        # Inflating all of it takes ~0.5 s of CPU; stopping at 1 MiB takes milliseconds.
        assert cpu < 0.25, cpu
        status, answer = await post(source, gzip.compress(goldmane_flow(packets_in=3)), **{"Content-Encoding": "gzip"})
        assert status == 200 and total(pipeline) == 3
    assert source.buffered == 0


async def open_unfinished(port: int, length: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                 f"Content-Length: {length}\r\n\r\n".encode() + goldmane_flow(packets_in=1))
    await writer.drain()
    return reader, writer


async def test_concurrent_and_buffered_bounds_answer_503_and_slow_bodies_408(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(goldmane_push, "MAX_WAITING_REQUESTS", 1)
    pipeline = Pipeline()
    source = receiver(pipeline, max_concurrent_requests=2, body_timeout_seconds=1.0)
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        assert source.bound_port is not None
        slow = [await open_unfinished(source.bound_port, 10_000) for _ in range(2)]
        await until(lambda: source._active == 2, timeout=10, what="two bodies being read")
        waiting = asyncio.create_task(post(source, goldmane_flow(packets_in=5)))  # waits for a slot
        await until(lambda: source._waiting == 1, timeout=10, what="a push waiting for a slot")
        status, answer = await post(source, goldmane_flow(packets_in=7))  # nobody else may wait
        assert status == 503 and "busy" in str(answer["error"])
        for reader, _writer in slow:  # the slow bodies time out: 408, nothing counted
            head = await asyncio.wait_for(reader.read(100), 10)
            assert head.startswith(b"HTTP/1.1 408")
        for _reader, writer in slow:
            writer.close()
        assert (await waiting)[0] == 200  # served once a slot was free
        assert total(pipeline) == 5
    assert source.buffered == 0 and source._active == 0

    small = Pipeline()
    limited = receiver(small, max_buffered_bytes=4096, max_body_bytes=1 << 20)
    async with Running(limited):
        await until(lambda: limited.bound_port is not None)
        status, answer = await post(limited, (goldmane_flow(packets_in=1) + b"\n") * 20)
        assert status == 503 and "would hold more than" in str(answer["error"])
        assert total(small) == 0


async def test_connections_without_a_request_are_closed_after_the_idle_timeout() -> None:
    pipeline = Pipeline()
    source = receiver(pipeline, idle_timeout_seconds=0.3)
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        silent_reader, silent = await asyncio.open_connection("127.0.0.1", source.bound_port)
        partial_reader, partial = await asyncio.open_connection("127.0.0.1", source.bound_port)
        partial.write(b"POST / HTTP/1.1\r\nHost: x\r\n")  # the header never completes
        await partial.drain()
        started = time.monotonic()
        assert await asyncio.wait_for(silent_reader.read(), 3) == b""
        assert await asyncio.wait_for(partial_reader.read(), 3) == b""
        assert time.monotonic() - started < 2.5
        silent.close()
        partial.close()


async def test_gzip_bodies_of_several_members_are_read_whole() -> None:
    pipeline = Pipeline()
    source = receiver(pipeline)
    body = gzip.compress(goldmane_flow(packets_in=1) + b"\n") + gzip.compress(goldmane_flow(packets_in=2) + b"\n")
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        status, answer = await post(source, body, **{"Content-Encoding": "gzip"})
    assert status == 200 and answer["counted"] == 2 and total(pipeline) == 3


async def test_a_body_cut_short_by_the_client_counts_nothing() -> None:
    pipeline = Pipeline()
    source = receiver(pipeline)
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        assert source.bound_port is not None
        _reader, writer = await open_unfinished(source.bound_port, 1_000_000)  # one complete line sent
        writer.write(b"\n" + goldmane_flow(packets_in=2) + b"\n")
        await writer.drain()
        await until(lambda: source.buffered > 0, what="the body being read")
        writer.close()
        await until(lambda: source._active == 0, what="the cut body given up")
    assert total(pipeline) == 0 and source.stats.read == 0
    assert source.metrics.push_requests[(source.spec, "400")] == 1


async def test_many_tiny_lines_count_against_the_buffer_bound() -> None:
    """A body of empty lines costs a list slot per line: held memory counts it, not only the bytes."""
    pipeline = Pipeline()
    source = receiver(pipeline, max_buffered_bytes=1 << 20)
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        status, answer = await post(source, b"a\n" * 100_000)  # 200 kB of bytes, ~6 MB as a list of lines
        assert status == 503 and "would hold more than" in str(answer["error"])
        status, answer = await post(source, b"x" * 600_000 + b"\n" + goldmane_flow(packets_in=3))
        assert status == 200 and answer == {"lines": 2, "counted": 1, "invalid": 1}  # one long line: linear
    assert total(pipeline) == 3 and source.buffered == 0
