"""Throughput and event-loop stall of the sources, on real files, a real gRPC server and real HTTP POSTs.

Run: .venv/bin/python -m tests.sources.bench_sources [LINES]   (prints figures; not a pytest test)
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp

from exporter.pipeline import Pipeline
from exporter.sources.file import FileSource
from exporter.sources.goldmane_push import GoldmanePushSource
from exporter.sources.hubble_relay import HubbleRelaySource
from exporter.sources.options import FileOptions, RelayOptions
from tests.sources.goldmane_flows import goldmane_flow
from tests.sources.helpers import Running, until
from tests.sources.test_hubble_relay import FlowServer, hubble_json, responses


def hubble_lines(n: int) -> list[dict[str, object]]:
    """A mix like a busy node's exporter file: 60 % traces, 25 % allowed verdicts, 15 % denied (verdict+drop)."""
    out: list[dict[str, object]] = []
    for i in range(n):
        r = i % 20
        t = f"2026-11-28T19:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}000000Z"
        if r < 12:
            out.append(hubble_json(4, "FORWARDED", sport=30000 + i % 30000, t=t))
        elif r < 17:
            out.append(hubble_json(5, "FORWARDED", sport=30000 + i % 30000, t=t, allowed_by=f"p{i % 50}"))
        else:
            out.append(hubble_json(5 if r < 19 else 1, "DROPPED", reason="POLICY_DENIED", sport=30000 + i % 30000,
                                   t=t))
    return out


class StallMeter:
    """Largest delay of a 5 ms ticker: how long the event loop was blocked at a stretch."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, time.perf_counter() - start - 0.005)

    def __enter__(self) -> StallMeter:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def bench_file(objs: list[dict[str, object]], tmp: Path) -> None:
    path = tmp / "events.log"
    data = b"".join(json.dumps(o, separators=(",", ":")).encode() + b"\n" for o in objs)
    path.write_bytes(data)
    pipeline = Pipeline()
    source = FileSource(f"hubble-file:{path}", pipeline, str(path), "hubble", FileOptions(), str(tmp / "state"))
    with StallMeter() as stall:
        start, cpu = time.perf_counter(), time.process_time()
        async with Running(source):
            await until(lambda: source.stats.read == len(objs), timeout=600)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"hubble-file: {len(objs)} lines, {len(data) / 1e6:.1f} MB in {elapsed:.2f} s = "
          f"{len(objs) / elapsed:,.0f} lines/s, {len(data) / 1e6 / elapsed:.1f} MB/s "
          f"({cpu / len(objs) * 1e6:.1f} µs CPU per line); "
          f"counted {source.stats.counted}; worst event-loop stall {stall.worst * 1000:.1f} ms")


def _serve(msgs: list[bytes], conn: Connection) -> None:
    async def serve() -> None:
        async with FlowServer(msgs) as server:
            conn.send(server.port)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until the parent says stop

    asyncio.run(serve())


async def bench_relay(objs: list[dict[str, object]]) -> None:
    msgs = responses(objs)
    pipeline = Pipeline()
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(msgs, child), daemon=True)
    server.start()
    port = parent.recv()
    try:
        source = HubbleRelaySource(f"hubble-relay:127.0.0.1:{port}", pipeline, "127.0.0.1", port, RelayOptions())
        with StallMeter() as stall:
            start, cpu = time.perf_counter(), time.process_time()
            async with Running(source):
                await until(lambda: source.stats.read == len(msgs), timeout=600)
                elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        parent.send("stop")
        server.join(10)
    print(f"hubble-relay (Python test server in another process): {len(msgs)} messages in {elapsed:.2f} s = "
          f"{len(msgs) / elapsed:,.0f} messages/s ({cpu / len(msgs) * 1e6:.1f} µs exporter CPU per message); "
          f"counted {source.stats.counted}; "
          f"worst event-loop stall {stall.worst * 1000:.1f} ms")


async def bench_push(n: int) -> None:
    lines = [goldmane_flow(packets_in=1 + i % 7, dest_port=1000 + i % 500) for i in range(n)]
    batch = 5000
    bodies = [b"\n".join(lines[i:i + batch]) for i in range(0, n, batch)]
    pipeline = Pipeline()
    source = GoldmanePushSource("calico-goldmane-push:127.0.0.1:0", pipeline, "127.0.0.1", 0)
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        url = f"http://127.0.0.1:{source.bound_port}/"
        with StallMeter() as stall:
            start, cpu = time.perf_counter(), time.process_time()
            async with aiohttp.ClientSession() as session:
                for body in bodies:
                    async with session.post(url, data=body,
                                            headers={"Content-Type": "application/x-ndjson"}) as resp:
                        assert resp.status == 200
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"calico-goldmane-push: {n} flows in {len(bodies)} POSTs of {batch} in {elapsed:.2f} s = "
          f"{n / elapsed:,.0f} flows/s ({cpu / n * 1e6:.1f} µs CPU per flow, client included); "
          f"counted {source.stats.counted}; "
          f"worst event-loop stall {stall.worst * 1000:.1f} ms")


async def main(n: int) -> None:
    objs = hubble_lines(n)
    with tempfile.TemporaryDirectory() as tmp:
        await bench_file(objs, Path(tmp))
    await bench_relay(objs[: n // 4])
    await bench_push(n // 4)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
