"""Incremental rendering: the same bytes as Pipeline.render(), in small steps."""

from __future__ import annotations

import gzip
import io
import time

import aiohttp
import pytest

from exporter.config import Config
from exporter.model import Family
from exporter.pipeline import Pipeline
from exporter.service.scrape import GzipStream, render_chunks
from tests.service.helpers import FIXTURE_LINES, ListSource, running_service


def _filled(n: int) -> Pipeline:
    pipeline = Pipeline(Config.model_validate({"series": {"max_per_family": n + 10}}))
    stats = pipeline.source("test:fixture", "hubble")
    pipeline.ingest(stats, FIXTURE_LINES)
    store = pipeline.stores[Family.DROPPED]
    now = time.monotonic()
    for i in range(n):
        store.add(("ns/p", "ingress", f"a/client-{i}", "a", 'b/"quoted"\\', "b", str(i), "TCP", "POLICY_DENIED"),
                  i + 0.5, now)
    return pipeline


@pytest.mark.parametrize("openmetrics", [False, True])
@pytest.mark.parametrize("chunk", [1, 7, 500])
def test_chunks_equal_the_whole_render(openmetrics: bool, chunk: int) -> None:
    pipeline = _filled(50)
    chunks = list(render_chunks(pipeline, openmetrics, chunk))
    assert "".join(chunks).encode() == pipeline.render(openmetrics=openmetrics)
    per_chunk = [sum(1 for ln in c.splitlines() if ln.startswith("networkpolicy_")) for c in chunks]
    assert max(per_chunk) == min(chunk, 52)  # never more than `chunk` series (the dropped store has 52)
    assert sum(per_chunk) == 50 + 2 + 2  # the filled series, the fixture's 2 allowed and 2 dropped series


def test_gzip_stream_round_trip() -> None:
    pipeline = _filled(20)
    gz = GzipStream()
    data = b"".join(gz.compress(c.encode()) for c in render_chunks(pipeline, False, 3)) + gz.finish()
    assert gzip.GzipFile(fileobj=io.BytesIO(data)).read() == pipeline.render()


async def test_large_scrape_over_http_is_complete() -> None:
    n = 20_000

    def sources(pipeline: Pipeline) -> list[ListSource]:
        store = pipeline.stores[Family.ALLOWED]
        now = time.monotonic()
        for i in range(n):
            store.add(("ns/p", "ingress", f"a/c-{i}", "a", "b/s", "b", "443", "TCP"), 1, now)
        return [ListSource("test:x", pipeline)]

    config = Config.model_validate({"series": {"max_per_family": n}})
    async with running_service(sources, config=config) as (_service, url), aiohttp.ClientSession() as http, \
            http.get(url + "/metrics", headers={"Accept-Encoding": "gzip"}) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        text = await resp.text()  # aiohttp decompresses
    lines = [ln for ln in text.splitlines() if ln.startswith("networkpolicy_allowed_packets_total{")]
    assert len(lines) == n
    assert len(set(lines)) == n
