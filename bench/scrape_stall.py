"""How long does a scrape stall ingestion? Fill N series, keep a source ingesting, scrape repeatedly.

    .venv/bin/python bench/scrape_stall.py [--series 100000] [--scrapes 10] [--gzip]

Prints
- the scrape time (render + send, streamed) and as an external client (a separate process) sees it;
- the lateness of a 1 ms ticker on the event loop during the scrapes and during a baseline without
  them: the longest any source waited (wall clock, so it includes the OS not scheduling us at all:
  compare with the baseline and the load average printed);
- the longest single step the scrape code holds the event loop for (one chunk: render, encode,
  compress), in wall and CPU time: the scrape's own contribution to any stall;
- the ingest rate meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.config import Config
from exporter.model import Family
from exporter.pipeline import Pipeline
from exporter.service.runtime import Service
from exporter.service.scrape import CHUNK_SERIES, GCPause, GzipStream, render_chunks
from exporter.sources.base import Source

SCRAPER = r"""
import json, sys, time, urllib.request
url, n, gz = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
out = []
for _ in range(n):
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"} if gz else {})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as resp:
        size = len(resp.read())
    out.append((time.perf_counter() - t, size))
print(json.dumps(out))
"""


def hubble_line(i: int) -> bytes:
    return json.dumps({"flow": {
        "time": "2026-11-28T10:00:00Z", "verdict": "FORWARDED", "event_type": {"type": 5},
        "traffic_direction": "INGRESS", "IP": {"source": "10.0.0.1", "destination": "10.0.0.2"},
        "l4": {"TCP": {"source_port": 40000 + i % 20000, "destination_port": 7233}},
        "source": {"namespace": "temporal-workers", "pod_name": f"worker-{i % 50}"},
        "destination": {"namespace": "temporal", "pod_name": "temporal-frontend-6c9d7f8b5d-x2k9p"},
        "ingress_allowed_by": [{"name": "temporal-frontend-policy", "namespace": "temporal"}],
    }}).encode()


class SteadySource(Source):
    """Ingests `batch` lines every `interval` seconds: a busy node's exporter file."""

    format = "hubble"

    def __init__(self, pipeline: Pipeline, batch: int = 200, interval: float = 0.01) -> None:
        super().__init__("bench:steady", pipeline)
        self.lines = [hubble_line(i) for i in range(batch)]
        self.interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        self.set_state("running")
        while not stop.is_set():
            self.pipeline.ingest(self.stats, self.lines)
            await asyncio.sleep(self.interval)


def fill(pipeline: Pipeline, n: int) -> None:
    store = pipeline.stores[Family.DROPPED]
    now = time.monotonic()
    for i in range(n):
        key = ("temporal/temporal-history-policy", "ingress", f"ns-{i % 97}/client-{i}", f"ns-{i % 97}",
               "temporal/temporal-history", "temporal", str(7000 + i % 1000), "TCP", "POLICY_DENIED")
        store.add(key, i % 13 + 1, now)


async def ticker(stop: asyncio.Event, lateness: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.001)
        lateness.append(loop.time() - t - 0.001)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=10)
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args()

    config = Config.model_validate({"series": {"max_per_family": args.series + 10_000}})
    pipeline = Pipeline(config)
    fill(pipeline, args.series)
    source = SteadySource(pipeline)
    service = Service(pipeline, [source], listen="127.0.0.1:0")
    await service.start()
    url = f"http://{service.url_host()}/metrics"

    stop = asyncio.Event()
    baseline: list[float] = []
    task = asyncio.create_task(ticker(stop, baseline))
    read0 = source.stats.read
    await asyncio.sleep(3.0)
    stop.set()
    await task
    base_rate = (source.stats.read - read0) / 3.0

    stop = asyncio.Event()
    during: list[float] = []
    task = asyncio.create_task(ticker(stop, during))
    read0, t0 = source.stats.read, time.perf_counter()
    renders: list[float] = []

    async def scrape() -> list[list[float]]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SCRAPER, url, str(args.scrapes), "1" if args.gzip else "0",
            stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        return json.loads(out)

    scrape_task = asyncio.create_task(scrape())
    while not scrape_task.done():
        await asyncio.sleep(0.05)
        if service.stats.last_render_seconds and (not renders or renders[-1] != service.stats.last_render_seconds):
            renders.append(service.stats.last_render_seconds)
    scrapes = scrape_task.result()
    elapsed = time.perf_counter() - t0
    stop.set()
    await task
    rate = (source.stats.read - read0) / elapsed

    steps_wall, steps_cpu = [], []
    for _ in range(3):
        chunks = render_chunks(pipeline, False)
        gz = GzipStream() if args.gzip else None
        with GCPause():
            while True:
                w, c = time.perf_counter(), time.thread_time()
                text = next(chunks, None)
                if text is None:
                    break
                data = text.encode()
                if gz is not None:
                    gz.compress(data)
                steps_wall.append(time.perf_counter() - w)
                steps_cpu.append(time.thread_time() - c)

    inline = []
    for _ in range(3):
        t = time.perf_counter()
        pipeline.render()
        inline.append(time.perf_counter() - t)
    await service.stop()

    ms = 1000.0
    series = sum(len(s) for s in pipeline.stores.values())
    print(f"series: {series} | body: {scrapes[-1][1] / 1e6:.1f} MB{' (gzip)' if args.gzip else ''} | "
          f"python {sys.version.split()[0]}")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"scrape (render + send, streamed in chunks of {CHUNK_SERIES} series): median "
          f"{statistics.median(renders) * ms:.0f} ms, max {max(renders) * ms:.0f} ms ({len(renders)} seen)")
    print(f"longest step a scrape holds the event loop: {max(steps_wall) * ms:.1f} ms wall, "
          f"{max(steps_cpu) * ms:.1f} ms CPU (median {statistics.median(steps_wall) * ms:.1f} ms; "
          f"{len(steps_wall) // 3} steps per scrape)")
    print(f"scrape as the client sees it: median {statistics.median(s[0] for s in scrapes) * ms:.0f} ms, "
          f"max {max(s[0] for s in scrapes) * ms:.0f} ms ({len(scrapes)} scrapes)")
    print(f"event-loop stall (1 ms ticker lateness) during scrapes: max {max(during) * ms:.1f} ms, "
          f"p99 {statistics.quantiles(during, n=100)[98] * ms:.1f} ms")
    print(f"event-loop stall without scrapes (baseline): max {max(baseline) * ms:.1f} ms, "
          f"p99 {statistics.quantiles(baseline, n=100)[98] * ms:.1f} ms")
    print(f"ingest rate: {base_rate:.0f} lines/s without scrapes, {rate:.0f} lines/s during scrapes")
    print(f"for comparison, rendering on the event loop would stall it for {min(inline) * ms:.0f}-"
          f"{max(inline) * ms:.0f} ms per scrape")


if __name__ == "__main__":
    asyncio.run(main())
