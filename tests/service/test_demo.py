"""The demo: its generated traffic through the real Pipeline, in-process and as a subprocess."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from exporter.config import Config
from exporter.model import Family
from exporter.pipeline import Pipeline
from exporter.service.demo import DemoSource
from exporter.service.demo_traffic import LOOP_SECONDS, SCENARIOS, schedule
from tests.service.helpers import running_service, wait_for
from tests.service.procs import Exporter, poll, sample

T0_NS = 1_795_860_000 * 10**9


def _loop_lines() -> list[bytes]:
    return [build(T0_NS + int(offset * 1e9)) for offset, build in schedule()]


def test_schedule_is_realistic_hubble() -> None:
    lines = [json.loads(line) for line in _loop_lines()]
    flows = [line["flow"] for line in lines if "flow" in line]
    assert any("lost_events" in line for line in lines)
    kinds = {(f["event_type"]["type"], f["verdict"]) for f in flows}
    assert kinds == {(5, "FORWARDED"), (5, "DROPPED"), (1, "DROPPED"), (4, "FORWARDED")}
    # every drop event follows a DROPPED verdict of the same 5-tuple 1 ms earlier
    verdicts = {(f["IP"]["source"], f["IP"]["destination"], json.dumps(f["l4"]), f["time"]) for f in flows
                if f["event_type"]["type"] == 5 and f["verdict"] == "DROPPED"}
    drops = [f for f in flows if f["event_type"]["type"] == 1]
    assert drops and all((f["drop_reason_desc"], f["event_type"]["sub_type"]) in
                         (("POLICY_DENIED", 133), ("POLICY_DENY", 181)) for f in drops)
    assert any(f["drop_reason_desc"] == "POLICY_DENY" for f in drops)  # the sandbox CCNP's deny rule
    assert len(drops) == len(verdicts)
    # some denied SYNs are retransmitted: the same 5-tuple denied again 1 s later
    tuples: dict[tuple[str, str, str], int] = {}
    for f in drops:
        key = (f["IP"]["source"], f["IP"]["destination"], json.dumps(f["l4"]))
        tuples[key] = tuples.get(key, 0) + 1
    assert max(tuples.values()) >= 2
    # allowed verdicts name the seed's policies
    allowed_by = {(p["namespace"], p["name"]) for f in flows for key in ("ingress_allowed_by", "egress_allowed_by")
                  for p in f.get(key, [])}
    assert ("temporal", "temporal-frontend-policy") in allowed_by
    assert ("databases", "postgresql-policy") in allowed_by
    assert ("temporal-workers", "payment-worker-policy") in allowed_by
    namespaces = {f[side].get("namespace") for f in flows for side in ("source", "destination")} - {None}
    assert namespaces == {"temporal", "temporal-workers", "temporal-monitoring", "databases", "ingress-nginx",
                          "kube-system", "network-policy-test", "sandbox"}
    # Cilium policies name themselves with their kind; a CCNP has no namespace
    kinds = {(p["namespace"], p["name"], p["kind"]) for f in flows for p in f.get("egress_allowed_by", [])}
    assert ("", "sandbox-egress-lockdown", "CiliumClusterwideNetworkPolicy") in kinds
    assert ("sandbox", "build-runner-registry", "CiliumNetworkPolicy") in kinds
    assert all(0 <= offset < LOOP_SECONDS for offset, _ in schedule())


def test_one_loop_counts_through_the_pipeline() -> None:
    """What the exporter counts for one loop equals what the generated lines say, line by line."""
    lines = _loop_lines()
    flows = [json.loads(line).get("flow") for line in lines]
    expect_dropped = sum(1 for f in flows if f and f["event_type"]["type"] == 5 and f["verdict"] == "DROPPED")
    expect_allowed = sum(1 for f in flows if f and f["event_type"]["type"] == 5 and f["verdict"] == "FORWARDED")
    expect_drop_events = sum(1 for f in flows if f and f["event_type"]["type"] == 1)
    pipeline = Pipeline(Config())
    stats = pipeline.source("demo:test", "hubble")
    pipeline.ingest(stats, lines)
    total = {family: sum(entry[0] for entry in store.series.values()) for family, store in pipeline.stores.items()}
    assert total[Family.DROPPED] == expect_dropped
    assert total[Family.ALLOWED] == expect_allowed
    assert stats.paired == expect_drop_events  # each twin paired with its verdict: counted once
    assert stats.invalid == 0
    store = pipeline.stores[Family.DROPPED]
    test_client_denials = store.value(
        policy="default-deny", direction="ingress", source="network-policy-test/test-client",
        source_namespace="network-policy-test", destination="temporal/temporal-history",
        destination_namespace="temporal", destination_port="7235", protocol="TCP", reason="POLICY_DENIED")
    attempts = sum(1 for s in SCENARIOS if s.src.ip == "10.0.2.200" and s.port == 7235) * 3
    assert attempts <= test_client_denials <= 3 * attempts  # each attempt: the SYN and up to 2 retransmissions
    allowed = pipeline.stores[Family.ALLOWED]
    assert allowed.value(
        policy="temporal/temporal-frontend-policy", direction="ingress", source="network-policy-test/test-client",
        source_namespace="network-policy-test", destination="temporal/temporal-frontend",
        destination_namespace="temporal", destination_port="7233", protocol="TCP") == 3


async def test_demo_source_live_pace() -> None:
    async with running_service(lambda p: [DemoSource(p, speed=30)]) as (service, url), \
            aiohttp.ClientSession() as http:
        source = service.sources[0]
        await wait_for(lambda: source.stats.counted > 50, timeout=10)
        read_then = source.stats.read
        await asyncio.sleep(0.5)
        assert source.stats.read > read_then  # still flowing: a live pace, not one burst
        async with http.get(url + "/api/v1/denied-flows?limit=5") as resp:
            body = await resp.json()
        async with http.get(url + "/") as resp:
            page = await resp.text()
    assert body["count"] >= 1
    # no policy files in-process: the contract's sentinels (the sandbox's deny rule: unknown)
    assert all(flow["policy"] in ("default-deny", "unknown") and flow["input"] == "demo:temporal"
               for flow in body["flows"])
    assert "demo:temporal" in page and "replaying" in page
    # timestamps are current, not the recording's
    assert abs(source.stats.last_event_time - __import__("time").time()) < 30


def test_demo_subprocess_serves_drops_and_allows() -> None:
    demo = Exporter(["demo", "--listen", "127.0.0.1:0", "--speed", "10", "--duration", "6"])
    assert demo.url.startswith("http://127.0.0.1:")

    def both() -> bool:
        text = demo.get("/metrics")
        return "networkpolicy_dropped_packets_total{" in text and "networkpolicy_allowed_packets_total{" in text

    poll(both, timeout=5)
    text = demo.get("/metrics")
    assert (sample(text, "netpol_exporter_events_counted_total", source="demo:temporal") or 0) > 0
    poll(lambda: "network-policy-test/test-client" in demo.get("/"), timeout=5)  # the seed's violator
    # the shipped policies name the policy behind each drop, Cilium's included
    poll(lambda: "temporal/temporal-history-policy" in demo.get("/") and "sandbox-egress-lockdown" in demo.get("/"),
         timeout=8)
    denied = json.loads(demo.get("/api/v1/denied-flows?limit=500"))
    assert denied["count"] >= 1 and all(flow["policy"] not in ("default-deny", "unknown") for flow in denied["flows"])
    assert demo.wait_exit(15) == 0  # --duration ends it with status 0, no signal needed
    assert any(entry.get("msg") == "stopped" for entry in demo.logs)
