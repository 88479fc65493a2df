"""The fidelity corpus (corpus/README.md: where each line comes from) counted as the contract says,
through `once`, through `run` (followed files, scraped over HTTP) and through the Relay protobuf path."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.pipeline import Pipeline
from tests.sources.helpers import Running, until
from tests.sources.test_hubble_relay import FlowServer, relay_source, responses
from tests.sources.test_run_integration import Exporter, free_port, scrape

CORPUS = Path(__file__).parent / "corpus"
FLOW_FAMILIES = {"networkpolicy_dropped_packets": "dropped", "networkpolicy_allowed_packets": "allowed",
                 "networkpolicy_audit_packets": "audit"}
Summary = dict[tuple[str, str, str, str, str], float]

# (family, policy, direction, destination_port, reason) → count, per file
EXPECTED: dict[str, Summary] = {
    "hubble-aggregated-1.19.jsonl": {
        # interval 1: 3 verdicts + 3 drop twins (drop group flushed first) → 3; interval 2: 2 verdicts, 1 twin → 2
        ("dropped", "default-deny", "ingress", "8080", "POLICY_DENIED"): 5,
        ("allowed", "shop/cart-ingress", "ingress", "8080", ""): 2,
    },
    "hubble-allowed-before-1.15.jsonl": {
        ("allowed", "unknown", "ingress", "8080", ""): 1,  # policy_match_type 2: a rule matched, none named
        ("allowed", "default-allow", "egress", "9090", ""): 1,  # no match type: nothing isolates
    },
    "hubble-cilium-docs-fieldmask.jsonl": {
        ("dropped", "default-deny", "unknown", "80", "POLICY_DENIED"): 1,  # INVALID_SOURCE_IP counts nowhere
    },
    "hubble-fieldmask-no-event-type.jsonl": {
        ("dropped", "default-deny", "unknown", "8080", "POLICY_DENIED"): 2,  # two packets, each verdict + twin
    },
    "hubble-l7-denied.jsonl": {
        ("dropped", "unknown", "ingress", "8080", "L7_POLICY_DENIED"): 1,  # the request; not the 403
    },
    "hubble-no-time.jsonl": {
        ("dropped", "default-deny", "ingress", "8080", "POLICY_DENIED"): 2,  # cannot pair without a time
    },
    "calico-forward.jsonl": {
        ("dropped", "security.block-egress-forward", "forward", "443", "POLICY_DENIED"): 4,
        ("allowed", "security.allow-web-forward", "forward", "80", ""): 5,
        ("allowed", "shop/cart-ingress", "ingress", "8080", ""): 10,
        ("dropped", "shop/cart-ingress", "ingress", "8080", "POLICY_DENIED"): 2,
        ("allowed", "default-allow", "egress", "8080", ""): 2,
    },
    "calico-staged-all-policies.jsonl": {
        ("allowed", "shop/cart-ingress", "ingress", "8080", ""): 12,  # not the staged deny before it
        ("dropped", "shop/cart-ingress", "ingress", "8080", "POLICY_DENIED"): 3,
    },
}
MISSING_FIELDS = {
    "hubble-cilium-docs-fieldmask.jsonl": {"event_type": 1},
    "hubble-fieldmask-no-event-type.jsonl": {"event_type": 5},
    "hubble-no-time.jsonl": {"time": 2},
}


def fmt(name: str) -> str:
    return name.split("-", 1)[0]


def summarize(exposition: str) -> tuple[Summary, dict[str, dict[str, float]]]:
    """Flow samples by (family, policy, direction, port, reason); self-metrics by name and source."""
    flows: Counter[tuple[str, str, str, str, str]] = Counter()
    selfm: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            if family.name in FLOW_FAMILIES:
                lab = s.labels
                flows[(FLOW_FAMILIES[family.name], lab["policy"], lab["direction"], lab["destination_port"],
                       lab.get("reason", ""))] += s.value
            elif "source" in s.labels:
                key = s.name + ("/" + s.labels["field"] if "field" in s.labels else "")
                selfm.setdefault(key, {})[s.labels["source"]] = s.value
    return dict(flows), selfm


def run_once(*paths: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "exporter", "once", "--format", fmt(paths[0].name),
                             *map(str, paths)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_once_counts_each_shape_as_the_contract_says(name: str) -> None:
    flows, selfm = summarize(run_once(CORPUS / name))
    assert flows == EXPECTED[name]
    source = f"{fmt(name)}:{CORPUS / name}"
    read = selfm["netpol_exporter_events_read_total"][source]
    assert read == len((CORPUS / name).read_text().splitlines())
    assert read == sum(selfm[f"netpol_exporter_events_{k}_total"][source] for k in ("counted", "ignored", "invalid"))
    assert selfm["netpol_exporter_events_invalid_total"][source] == 0
    missing = {key.split("/")[1]: by_source[source] for key, by_source in selfm.items()
               if key.startswith("netpol_exporter_events_missing_fields_total/")}
    assert missing == MISSING_FIELDS.get(name, {})


def merged(names: list[str]) -> Summary:
    total: Counter[tuple[str, str, str, str, str]] = Counter()
    for name in names:
        total.update(EXPECTED[name])
    return dict(total)


async def test_run_counts_the_corpus_from_followed_files(tmp_path: Path) -> None:
    port = free_port()
    names = sorted(EXPECTED)
    args: list[str] = []
    for name in names:
        args += ["--source", f"{fmt(name)}-file:{CORPUS / name}"]
    lines = sum(len((CORPUS / n).read_text().splitlines()) for n in names)
    async with Exporter(args, port, tmp_path / "exporter.log"):
        await until_scraped(port, lines)
        text = await scrape_text(port)
    flows, selfm = summarize(text)
    assert flows == merged(names)
    missing = {(key.split("/")[1], Path(src.split(":", 1)[1]).name): value for key, by_source in selfm.items()
               if key.startswith("netpol_exporter_events_missing_fields_total/") for src, value in by_source.items()}
    assert missing == {(field, name): n for name, fields in MISSING_FIELDS.items() for field, n in fields.items()}


async def until_scraped(port: int, lines: int, timeout: float = 10.0) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        metrics = await scrape(port)
        read = sum(v for k, v in metrics.items() if k.startswith("netpol_exporter_events_read_total{"))
        if read >= lines:
            return
        assert time.monotonic() < deadline, f"read {read} of {lines} lines"
        await asyncio.sleep(0.05)


async def scrape_text(port: int) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        return await resp.text()


HUBBLE = sorted(n for n in EXPECTED if n.startswith("hubble"))


@pytest.mark.parametrize("name", HUBBLE)
async def test_relay_path_counts_each_hubble_shape_like_the_file(name: str) -> None:
    objs = [json.loads(line) for line in (CORPUS / name).read_text().splitlines()]
    pipeline = Pipeline()
    async with FlowServer(responses(objs)) as server:
        source = relay_source(pipeline, server.port)
        async with Running(source):
            await until(lambda: source.stats.read == len(objs), what="all messages")
    flows, _ = summarize(pipeline.render().decode())
    assert flows == EXPECTED[name]
    assert source.stats.missing_event_type == MISSING_FIELDS.get(name, {}).get("event_type", 0)
    assert source.stats.missing_time == MISSING_FIELDS.get(name, {}).get("time", 0)
