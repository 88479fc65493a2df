"""The HTTP endpoints of a real server on a free port, fed by real Sources through the real Pipeline."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime

import aiohttp
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.service.helpers import (
    ALLOWED_SERIES,
    FIXTURE_LINES,
    GatedSource,
    ListSource,
    running_service,
    wait_for,
)


def fixture_source(pipeline):  # type: ignore[no-untyped-def]
    return [ListSource("test:fixture", pipeline, FIXTURE_LINES)]


def _sample_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, by exact label match."""
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    for family in parse_text(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{name}{labels} not in the exposition")


async def test_metrics_text_exact_counts() -> None:
    async with running_service(fixture_source) as (service, url), aiohttp.ClientSession() as http:
        await wait_for(lambda: service.sources[0].stats.read > 0)
        async with http.get(url + "/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            text = await resp.text()
    assert _sample_value(text, "networkpolicy_allowed_packets_total", **ALLOWED_SERIES) == 2
    assert _sample_value(text, "networkpolicy_allowed_packets_total",
                         **{**ALLOWED_SERIES, "destination_port": "9090"}) == 1
    denied = {**ALLOWED_SERIES, "policy": "default-deny", "reason": "POLICY_DENIED"}
    # the verdict and its drop twin count once; the unpaired drop event counts once
    assert _sample_value(text, "networkpolicy_dropped_packets_total", **{**denied, "destination_port": "5432"}) == 1
    assert _sample_value(text, "networkpolicy_dropped_packets_total", **{**denied, "destination_port": "6379"}) == 1
    src = {"source": "test:fixture"}
    assert _sample_value(text, "netpol_exporter_events_read_total", **src) == 9
    assert _sample_value(text, "netpol_exporter_events_invalid_total", **src) == 1
    assert _sample_value(text, "netpol_exporter_events_counted_total", **src) == 5
    assert _sample_value(text, "netpol_exporter_hubble_lost_events_total", **src) == 7
    assert _sample_value(text, "netpol_exporter_hubble_drop_events_paired_total", **src) == 1
    assert _sample_value(text, "netpol_exporter_source_up", **src) == 1
    assert _sample_value(text, "netpol_exporter_source_failures_total", **src) == 0
    assert _sample_value(text, "netpol_exporter_ready") == 1


async def test_metrics_openmetrics_negotiation_parses() -> None:
    async with running_service(fixture_source) as (service, url), aiohttp.ClientSession() as http:
        await wait_for(lambda: service.sources[0].stats.read > 0)
        accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
        async with http.get(url + "/metrics", headers={"Accept": accept}) as resp:
            assert resp.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
            text = await resp.text()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    allowed = families["networkpolicy_allowed_packets"]
    assert allowed.type == "counter"
    values = {s.labels["destination_port"]: s.value for s in allowed.samples if s.name.endswith("_total")}
    assert values == {"8080": 2, "9090": 1}
    assert families["netpol_exporter_ready"].samples[0].value == 1


async def test_metrics_gzip() -> None:
    async with running_service(fixture_source) as (service, url), aiohttp.ClientSession(
            auto_decompress=False) as http:
        await wait_for(lambda: service.sources[0].stats.read > 0)
        async with http.get(url + "/metrics", headers={"Accept-Encoding": "gzip"}) as resp:
            assert resp.headers["Content-Encoding"] == "gzip"
            raw = await resp.read()
        async with http.get(url + "/metrics", headers={"Accept-Encoding": "identity"}) as resp:
            assert "Content-Encoding" not in resp.headers
            plain = await resp.read()
    unzipped = gzip.GzipFile(fileobj=io.BytesIO(raw)).read()
    assert b"networkpolicy_allowed_packets_total{" in unzipped
    # both renders describe the same counts (only the render-time gauge may differ)
    strip = [ln for ln in unzipped.splitlines() if b"scrape_render_seconds" not in ln]
    assert strip == [ln for ln in plain.splitlines() if b"scrape_render_seconds" not in ln]


async def test_readyz_transitions_and_healthz() -> None:
    async with running_service(lambda p: [GatedSource("test:gated", p)]) as (service, url), \
            aiohttp.ClientSession() as http:
        await wait_for(lambda: service.sources[0].status.state == "waiting")
        async with http.get(url + "/readyz") as resp:
            assert resp.status == 503
            body = await resp.json()
        assert body["ready"] is False
        assert body["sources"] == {"test:gated": "waiting"}
        assert body["not_ready"] == ["source test:gated is waiting: for the test"]
        async with http.get(url + "/healthz") as resp:
            assert resp.status == 200
        service.sources[0].go.set()  # type: ignore[attr-defined]
        await wait_for(lambda: service.sources[0].status.state == "running")
        async with http.get(url + "/readyz") as resp:
            assert resp.status == 200
            assert (await resp.json())["ready"] is True


class FakeSyncState:
    """A stand-in with the enrichment interface (start/stop/synced) whose sync the test controls."""

    def __init__(self) -> None:
        self.synced = False
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


async def test_readyz_waits_for_enrichment_sync() -> None:
    enrichment = FakeSyncState()
    async with running_service(fixture_source, enrichment=enrichment) as (service, url), \
            aiohttp.ClientSession() as http:
        await wait_for(lambda: service.sources[0].status.state == "running")
        async with http.get(url + "/readyz") as resp:
            assert resp.status == 503
            body = await resp.json()
            assert body["kubernetes_synced"] is False
            assert "kubernetes enrichment has not synced its caches yet" in body["not_ready"]
        enrichment.synced = True
        async with http.get(url + "/readyz") as resp:
            assert resp.status == 200
    assert enrichment.started and enrichment.stopped


async def test_landing_page_lists_sources_and_denied_flows() -> None:
    async with running_service(fixture_source) as (service, url), aiohttp.ClientSession() as http:
        await wait_for(lambda: service.sources[0].stats.read > 0)
        async with http.get(url + "/") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/html")
            page = await resp.text()
    assert "<code>test:fixture</code>" in page
    assert "class=running>running<" in page
    assert 'href=metrics' in page and 'href=api/v1/denied-flows' in page
    # the two denied flows (two groups), newest (port 6379) first, with time, peers, port, policy, reason
    first, second = page.index("<td>6379/TCP</td>"), page.index("<td>5432/TCP</td>")
    assert first < second
    assert '<td title="2026-11-28T10:00:04.000Z – 2026-11-28T10:00:04.000Z">2026-11-28 10:00:04</td>' in page
    assert '<span class=cut title="app/client">app/client</span></td><td><span class=cut title="db/server">' in page
    assert ">default-deny</span></td><td>POLICY_DENIED</td>" in page
    assert "http://" not in page and "https://" not in page  # no external assets


async def test_denied_flows_api_newest_first_with_limit() -> None:
    async with running_service(fixture_source) as (service, url), aiohttp.ClientSession() as http:
        await wait_for(lambda: service.sources[0].stats.read > 0)
        async with http.get(url + "/api/v1/denied-flows") as resp:
            body = await resp.json()
        async with http.get(url + "/api/v1/denied-flows?limit=1") as resp:
            limited = await resp.json()
        async with http.get(url + "/api/v1/denied-flows?limit=-3") as resp:
            assert resp.status == 400
            assert "limit" in (await resp.json())["error"]
    assert body["count"] == 2 and body["capacity"] == 500
    assert [f["destination_port"] for f in body["flows"]] == ["6379", "5432"]
    assert body["flows"][0] == {
        "time": "2026-11-28T10:00:04.000Z", "input": "test:fixture", "source": "app/client",
        "destination": "db/server", "destination_port": "6379", "protocol": "TCP", "policy": "default-deny",
        "reason": "POLICY_DENIED", "direction": "ingress", "packets": 1,
    }
    assert limited["count"] == 1 and limited["flows"][0]["destination_port"] == "6379"


async def test_sources_api() -> None:
    async with running_service(fixture_source) as (service, url), aiohttp.ClientSession() as http:
        await wait_for(lambda: service.sources[0].stats.read > 0)
        async with http.get(url + "/api/v1/sources") as resp:
            body = await resp.json()
    (entry,) = body["sources"]
    assert entry["source"] == "test:fixture" and entry["state"] == "running" and entry["format"] == "hubble"
    assert entry["events_read"] == 9 and entry["events_counted"] == 5 and entry["events_invalid"] == 1
    newest = datetime(2026, 11, 28, 10, 0, 4, tzinfo=UTC).timestamp()
    assert entry["last_event_time"] == newest  # the newest event's own time, not the time it was read
    assert entry["failures"] == 0
