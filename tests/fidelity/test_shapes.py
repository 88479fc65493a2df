"""Unit cases for the shapes of tests/fidelity/corpus: each rule of the contract on its own."""

from __future__ import annotations

import json

import pytest

from exporter.decoders.calico import direction
from exporter.decoders.goldmane import decode_line as decode_goldmane
from exporter.decoders.hubble import decode_line as decode_hubble
from exporter.model import HUBBLE_UNTYPED_DROP, MISSING_EVENT_TYPE, DecodeError, Family, FlowRecord
from exporter.pipeline import Pipeline
from tests.core.flows import hubble_line
from tests.sources.goldmane_flows import ALLOW, DENY, K8S_NP, goldmane_flow, hit

STAGED_KUBERNETES_NP = 5


@pytest.mark.parametrize(("reporter", "expected"), [
    ("dst", "ingress"), ("src", "egress"), ("fwd", "forward"), ("dst,fwd", "ingress"), ("dst, fwd", "ingress"),
    ("src,fwd", "egress"), ("fwd, src", "egress"), ("", "unknown"), (None, "unknown"), ("sideways", "unknown")])
def test_calico_reporter_to_direction(reporter: str | None, expected: str) -> None:
    assert direction(reporter) == expected


def test_goldmane_staged_hit_never_decides() -> None:
    line = goldmane_flow(action=ALLOW, enforced=[
        hit(STAGED_KUBERNETES_NP, "lockdown", "temporal", action=DENY, index=0),
        hit(K8S_NP, "temporal-history-policy", "temporal", action=ALLOW, index=1)])
    rec = decode_goldmane(line)
    assert rec is not None and rec.policies == ("temporal/temporal-history-policy",)


@pytest.mark.parametrize("lost", ['"1e308"', "-4", '"-4"', '"18446744073709551616"', "1.5"])
def test_lost_event_counts_a_source_could_never_write_are_invalid(lost: str) -> None:
    with pytest.raises(DecodeError, match="num_events_lost"):
        decode_hubble(b'{"lost_events":{"num_events_lost":' + lost.encode() + b"}}")


@pytest.mark.parametrize("counts", [{}, {"ingress_flow_count": -1}, {"egress_flow_count": "x"},
                                    {"unknown_direction_flow_count": 2**64}])
def test_aggregate_without_a_valid_count_is_invalid(counts: dict[str, object]) -> None:
    with pytest.raises(DecodeError, match="aggregate"):
        decode_hubble(hubble_line(event_type=5, verdict="DROPPED", reason="POLICY_DENIED", aggregate=counts))


def test_aggregate_counts_add_up_whatever_the_direction() -> None:
    rec = decode_hubble(hubble_line(verdict="FORWARDED", aggregate={
        "ingress_flow_count": 2, "egress_flow_count": "3", "unknown_direction_flow_count": 4}))
    assert isinstance(rec, FlowRecord) and rec.packets == 9 and rec.aggregated


def test_l7_records_count_only_when_dropped_and_not_a_reply() -> None:
    denied = decode_hubble(hubble_line(event_type=129, verdict="DROPPED", Type="L7"))
    assert isinstance(denied, FlowRecord) and denied.reason == "L7_POLICY_DENIED"
    assert decode_hubble(hubble_line(event_type=129, verdict="FORWARDED")) is None
    assert decode_hubble(hubble_line(event_type=129, verdict="DROPPED", is_reply=True)) is None
    # protojson with spaces, and the numeric verdict of old printers, go through the pre-filter too
    spaced = json.dumps(json.loads(hubble_line(event_type=129, verdict="DROPPED")), indent=1).replace("\n", "")
    assert isinstance(decode_hubble(spaced.encode()), FlowRecord)
    assert isinstance(decode_hubble(hubble_line(event_type=129, verdict=2)), FlowRecord)  # type: ignore[arg-type]


def test_a_flow_without_event_type() -> None:
    untyped = json.loads(hubble_line(verdict="DROPPED", reason="POLICY_DENIED"))
    del untyped["flow"]["event_type"]
    rec = decode_hubble(json.dumps(untyped).encode())
    assert isinstance(rec, FlowRecord) and rec.kind == HUBBLE_UNTYPED_DROP
    allowed = json.loads(hubble_line(verdict="FORWARDED"))
    del allowed["flow"]["event_type"]
    assert decode_hubble(json.dumps(allowed).encode()) is MISSING_EVENT_TYPE
    traced = json.loads(hubble_line(verdict="TRACED"))
    del traced["flow"]["event_type"]
    assert decode_hubble(json.dumps(traced).encode()) is None


def count(*lines: bytes) -> Pipeline:
    pipeline = Pipeline()
    pipeline.ingest(pipeline.source("hubble:test", "hubble"), list(lines))
    return pipeline


def untyped(t: str, **kw: object) -> bytes:
    obj = json.loads(hubble_line(verdict="DROPPED", reason="POLICY_DENIED", time=t, **kw))
    del obj["flow"]["event_type"]
    return json.dumps(obj).encode()


def test_untyped_twins_pair_within_the_window_and_retransmissions_do_not() -> None:
    p = count(untyped("2026-01-01T00:00:00.000Z"), untyped("2026-01-01T00:00:00.020Z"),
              untyped("2026-01-01T00:00:00.300Z"), untyped("2026-01-01T00:00:00.300100Z"),
              untyped("2026-01-01T00:00:01.300Z"))
    assert sum(e[0] for e in p.stores[Family.DROPPED].series.values()) == 3
    stats = p.self_metrics.sources["hubble:test"]
    assert (stats.paired, stats.missing_event_type) == (2, 5)


def test_untyped_aggregated_groups_count_the_larger_group_per_interval() -> None:
    p = count(untyped("2026-01-01T00:00:01Z", aggregate={"ingress_flow_count": 4}),
              untyped("2026-01-01T00:00:01.000020Z", aggregate={"ingress_flow_count": 3}),
              untyped("2026-01-01T00:00:41Z", aggregate={"ingress_flow_count": 2}))
    assert sum(e[0] for e in p.stores[Family.DROPPED].series.values()) == 6


def test_a_verdict_without_time_counts_and_the_pairing_state_takes_any_node() -> None:
    no_time = json.loads(hubble_line(event_type=5, verdict="DROPPED", reason="POLICY_DENIED"))
    del no_time["flow"]["time"], no_time["time"]
    lines = [json.dumps({**no_time, "node_name": node, "flow": {**no_time["flow"], "node_name": node}}).encode()
             for node in ("", "n1", "\u00e9", "n1")]
    p = count(*lines, hubble_line(event_type=1, verdict="DROPPED", reason="POLICY_DENIED", node="n1"))
    assert sum(e[0] for e in p.stores[Family.DROPPED].series.values()) == 5
    assert p.self_metrics.sources["hubble:test"].missing_time == 4
    assert p.counter.pending == 0
