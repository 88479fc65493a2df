"""The contract's counting rules, through the Pipeline (decode → count → store)."""

from __future__ import annotations

from typing import Any

from exporter.config import Config
from exporter.model import Family
from exporter.pipeline import Pipeline
from tests.core.flows import hubble_line


def run(*lines: bytes, config: Config | None = None) -> Pipeline:
    pipeline = Pipeline(config)
    stats = pipeline.source("test", "hubble")
    pipeline.ingest(stats, list(lines))
    return pipeline


def dropped_total(p: Pipeline) -> float:
    return sum(entry[0] for entry in p.stores[Family.DROPPED].series.values())


def t(ms: float) -> str:
    """A timestamp `ms` milliseconds after 10:00:00 (9 fractional digits, as protojson writes)."""
    ns = int(ms * 1_000_000)
    return f"2024-05-01T10:{ns // 60_000_000_000:02d}:{ns // 1_000_000_000 % 60:02d}.{ns % 1_000_000_000:09d}Z"


def verdict(ms: float, **kw: Any) -> bytes:
    kw.setdefault("reason", "POLICY_DENIED")
    return hubble_line(event_type=5, verdict="DROPPED", time=t(ms), **kw)


def drop(ms: float, **kw: Any) -> bytes:
    kw.setdefault("reason", "POLICY_DENIED")
    return hubble_line(event_type=1, verdict="DROPPED", time=t(ms), **kw)


def test_verdict_and_its_drop_twin_count_once_under_default_deny() -> None:
    p = run(verdict(0), drop(0.4))
    store = p.stores[Family.DROPPED]
    assert dropped_total(p) == 1
    assert store.value(policy="default-deny", direction="ingress", source="network-policy-test/test-client",
                       source_namespace="network-policy-test", destination="temporal/temporal-history",
                       destination_namespace="temporal", destination_port="7235", protocol="TCP",
                       reason="POLICY_DENIED") == 1
    stats = p.self_metrics.sources["test"]
    assert (stats.read, stats.counted, stats.ignored, stats.paired) == (2, 1, 1, 1)


def test_pair_counts_through_the_verdict_which_names_the_policy() -> None:
    p = run(verdict(0, reason="POLICY_DENY", ingress_denied_by=[{"name": "deny-x", "namespace": "temporal"}]),
            hubble_line(event_type=1, verdict="DROPPED", reason="POLICY_DENY", time=t(1)))
    assert [k[0] for k in p.stores[Family.DROPPED].series] == ["temporal/deny-x"]
    assert dropped_total(p) == 1


def test_unpaired_drop_event_and_unpaired_verdict_each_count() -> None:
    assert dropped_total(run(drop(0))) == 1
    assert dropped_total(run(verdict(0))) == 1
    unnamed_deny = run(hubble_line(event_type=1, verdict="DROPPED", reason="POLICY_DENY", time=t(0)))
    assert [k[0] for k in unnamed_deny.stores[Family.DROPPED].series] == ["unknown"]


def test_drop_more_than_window_after_verdict_does_not_pair() -> None:
    assert dropped_total(run(verdict(0), drop(50))) == 1  # exactly 50 ms: pairs
    assert dropped_total(run(verdict(0), drop(50.001))) == 2


def test_drop_before_its_verdict_does_not_pair() -> None:
    assert dropped_total(run(drop(0), verdict(1))) == 2


def test_retransmissions_are_their_own_pairs() -> None:
    # a denied SYN retransmitted at 1 s and 3 s: three verdict/drop pairs
    p = run(verdict(0), drop(0.3), verdict(1000), drop(1000.2), verdict(3000), drop(3000.4))
    assert dropped_total(p) == 3
    assert p.self_metrics.sources["test"].paired == 3


def test_earliest_unpaired_verdict_pairs_first() -> None:
    # two verdicts (SYN and its quick retransmit) then two drops: two pairs, not one pair + one drop
    assert dropped_total(run(verdict(0), verdict(10), drop(11), drop(12))) == 2
    # three verdicts, one drop: 3
    assert dropped_total(run(verdict(0), verdict(1), verdict(2), drop(3))) == 3


def test_pairing_key_must_match() -> None:
    other_node = drop(1, node="other-node")
    other_port = drop(1, l4={"TCP": {"source_port": 40001, "destination_port": 7235}})
    other_dir = drop(1, direction="EGRESS")
    other_reason = hubble_line(event_type=1, verdict="DROPPED", reason="POLICY_DENY", time=t(1))
    for unmatched in (other_node, other_port, other_dir, other_reason):
        assert dropped_total(run(verdict(0), unmatched)) == 2


def test_icmp_pairs_on_type() -> None:
    echo = {"ICMPv4": {"type": 8}}
    assert dropped_total(run(verdict(0, l4=echo), drop(1, l4=echo))) == 1
    assert dropped_total(run(verdict(0, l4=echo), drop(1, l4={"ICMPv4": {"type": 13}}))) == 2


def test_forwarded_verdict_counts_allowed_and_never_pairs() -> None:
    p = run(hubble_line(verdict="FORWARDED", time=t(0)), drop(1))
    assert sum(e[0] for e in p.stores[Family.ALLOWED].series.values()) == 1
    assert next(iter(p.stores[Family.ALLOWED].series))[0] == "default-allow"
    assert dropped_total(p) == 1


def test_audit_counts_in_audit_family() -> None:
    p = run(hubble_line(verdict="AUDIT", reason="POLICY_DENIED", time=t(0)), drop(1))
    assert sum(e[0] for e in p.stores[Family.AUDIT].series.values()) == 1
    assert next(iter(p.stores[Family.AUDIT].series))[0] == "default-deny"
    assert dropped_total(p) == 1  # an audit verdict is no twin of a drop


def test_pending_verdicts_are_pruned() -> None:
    p = run(*(verdict(i * 100) for i in range(100)))
    assert p.counter.pending == 21  # the last 2.05 s (pairing window + reorder slack), 100 ms apart
    assert dropped_total(p) == 100


def test_invalid_lines_are_counted_and_do_not_lose_counts() -> None:
    p = run(verdict(0), b"{broken", drop(0.5), b'{"flow":{"event_type":{"type":"x"}}}', verdict(5000))
    stats = p.self_metrics.sources["test"]
    assert (stats.read, stats.invalid, stats.counted) == (5, 2, 2)
    assert dropped_total(p) == 2


def test_lost_events_add_to_self_metric() -> None:
    p = run(b'{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"7"},"node_name":"n"}',
            b'{"lost_events":{"num_events_lost":"5"}}')
    assert p.self_metrics.sources["test"].lost == 12


def test_nodes_interleaved_out_of_time_order_still_pair() -> None:
    # Relay merges nodes: node-2's verdict (t=100 ms) arrives before node-1's drop (t=1 ms)
    p = run(verdict(0, node="n1"), verdict(100, node="n2"), drop(1, node="n1"), drop(101, node="n2"))
    assert dropped_total(p) == 2
    assert p.self_metrics.sources["test"].paired == 2


def test_late_drop_within_a_node_still_pairs() -> None:
    # another connection's verdict 1 s later is delivered before this drop (per-CPU rings)
    other = {"l4": {"TCP": {"source_port": 40123, "destination_port": 7235}}}
    assert dropped_total(run(verdict(0), verdict(1000, **other), drop(1))) == 2


def test_pending_memory_is_bounded_per_node_horizon() -> None:
    p = run(*(verdict(i * 1000, node=f"n{i % 3}") for i in range(60)))
    assert p.counter.pending == 3  # a node's verdicts are 3 s apart: each keeps only its newest


def test_real_cilium_audit_verdicts_carry_no_reason() -> None:
    # Cilium's decodeDropReason gives 0 for audited verdicts: no drop_reason, no drop_reason_desc
    p = run(hubble_line(verdict="AUDIT", time=t(0)),
            hubble_line(verdict="AUDIT", time=t(1), ingress_denied_by=[{"name": "deny-x", "namespace": "temporal"}]))
    audit = {k[0]: k[-1] for k in p.stores[Family.AUDIT].series}
    assert audit == {"default-deny": "POLICY_DENIED", "temporal/deny-x": "POLICY_DENY"}
