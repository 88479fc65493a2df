from __future__ import annotations

import gzip

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from exporter.config import Config, LabelsConfig, SeriesConfig
from exporter.exposition import maybe_gzip, negotiate
from exporter.model import FAMILY_LABELS, Family
from exporter.pipeline import Pipeline
from exporter.store import OVERFLOW, SeriesStore
from tests.core.flows import calico_line

LABELS = FAMILY_LABELS[Family.DROPPED]


def key(policy: str, src: str, port: str = "80") -> tuple[str, ...]:
    return (policy, "ingress", src, "ns", "ns/web", "ns", port, "TCP", "POLICY_DENIED")


def test_cap_folds_per_policy_and_keeps_totals_exact() -> None:
    store = SeriesStore("x", "h", LABELS, max_series=3)
    for i in range(10):
        store.add(key("ns/a" if i % 2 else "ns/b", f"ns/src{i}"), 2, now=0)
    assert sum(e[0] for e in store.series.values()) == 20
    assert store.folded == 7
    folded = {k for k in store.series if k[1] == OVERFLOW}
    assert folded == {("ns/b", *[OVERFLOW] * 8), ("ns/a", *[OVERFLOW] * 8)}
    # an existing series still counts in place when the cap is reached
    store.add(key("ns/b", "ns/src0"), 1, now=0)
    assert store.value(policy="ns/b", direction="ingress", source="ns/src0", source_namespace="ns",
                       destination="ns/web", destination_namespace="ns", destination_port="80", protocol="TCP",
                       reason="POLICY_DENIED") == 3


def test_disabled_labels_are_projected_away() -> None:
    store = SeriesStore("x", "h", LABELS, max_series=100, disabled=["source", "source_namespace", "destination_port"])
    store.add(key("p", "ns/a", "80"), 1, now=0)
    store.add(key("p", "ns/b", "443"), 1, now=0)
    assert store.label_names == ("policy", "direction", "destination", "destination_namespace", "protocol", "reason")
    assert next(iter(store.series.values()))[0] == 2 and len(store) == 1
    only_policy = SeriesStore("x", "h", LABELS, max_series=100, disabled=[n for n in LABELS if n != "policy"])
    only_policy.add(key("p", "a"), 1, now=0)
    assert list(only_policy.series) == [("p",)]


def test_idle_series_expire() -> None:
    store = SeriesStore("x", "h", LABELS, max_series=100)
    store.add(key("p", "old"), 1, now=0)
    store.add(key("p", "new"), 1, now=1000)
    assert store.expire(now=1300, idle_seconds=900) == 1
    assert [k[2] for k in store.series] == ["new"] and store.expired == 1
    assert store.expire(now=10**9, idle_seconds=0) == 0  # 0 = never


def test_ensure_creates_zero_series_without_counting() -> None:
    store = SeriesStore("x", "h", LABELS, max_series=1)
    store.ensure(key("p", "a"), now=0)
    store.ensure(key("p", "b"), now=0)  # beyond the cap: not created
    assert list(store.series.values()) == [[0, 0]]


def _pipeline() -> Pipeline:
    p = Pipeline(Config(series=SeriesConfig(max_per_family=2), labels=LabelsConfig()))
    stats = p.source("calico:test", "calico")
    p.ingest(stats, [
        calico_line(packets_in=3),
        calico_line(dest_name_aggr='we"ird\\pod\nname-*', packets_in=1),
        calico_line(dest_port=9090, packets_in=2),  # third series: folded
        calico_line(action="allow", packets_in=4, packets_out=4, policies=None),
        b"garbage",
    ])
    return p


def test_text_exposition_parses_and_has_no_created_series() -> None:
    text = _pipeline().render().decode()
    families = {f.name: f for f in parse_text(text)}
    dropped = families["networkpolicy_dropped_packets"]
    assert dropped.type == "counter"
    assert sum(s.value for s in dropped.samples) == 6
    assert any(s.labels["destination"] == 'temporal/we"ird\\pod\nname' for s in dropped.samples)
    assert any(s.labels["source"] == OVERFLOW for s in dropped.samples)
    assert "_created" not in text
    invalid = families["netpol_exporter_events_invalid"]
    assert [s.value for s in invalid.samples] == [1]
    folded = {s.labels["family"]: s.value for s in families["netpol_exporter_series_folded"].samples}
    assert folded["networkpolicy_dropped_packets_total"] == 1


def test_openmetrics_exposition_parses() -> None:
    text = _pipeline().render(openmetrics=True).decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in parse_openmetrics(text)}
    assert sum(s.value for s in families["networkpolicy_allowed_packets"].samples) == 8
    assert families["netpol_exporter_build_info"].samples[0].value == 1


def test_negotiation_and_gzip() -> None:
    assert negotiate("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")[0]
    assert not negotiate("text/plain")[0] and not negotiate(None)[0]
    body, encoding = maybe_gzip(b"abc" * 100, "gzip, deflate")
    assert encoding == "gzip" and gzip.decompress(body) == b"abc" * 100
    assert maybe_gzip(b"abc", None) == (b"abc", None)
