import json
from pathlib import Path

import pytest

from exporter.decoders.hubble import decode_line
from exporter.model import HUBBLE_DROP, HUBBLE_VERDICT, DecodeError, Family, FlowRecord, LostEvents
from tests.core.flows import hubble_line


def record(line: bytes) -> FlowRecord:
    rec = decode_line(line)
    assert isinstance(rec, FlowRecord)
    return rec


def test_forwarded_verdict_names_ingress_allowed_by() -> None:
    rec = record(hubble_line(
        verdict="FORWARDED",
        ingress_allowed_by=[{"name": "temporal-history-policy", "namespace": "temporal",
                             "labels": ["k8s:io.cilium.k8s.policy.derived-from=NetworkPolicy"], "revision": "7"}],
        egress_allowed_by=[{"name": "not-this-direction", "namespace": "x"}],
    ))
    assert rec.kind == HUBBLE_VERDICT
    assert rec.verdict is Family.ALLOWED
    assert rec.policies == ("temporal/temporal-history-policy",)
    assert rec.direction == "ingress"
    assert rec.source.name == "network-policy-test/test-client"
    assert rec.destination.name == "temporal/temporal-history"
    assert (rec.destination.namespace, rec.destination_port, rec.protocol) == ("temporal", "7235", "TCP")


def test_policies_sorted_deduplicated_and_cluster_scoped() -> None:
    rec = record(hubble_line(
        direction="EGRESS",
        egress_allowed_by=[
            {"name": "zz", "namespace": "temporal"},
            {"name": "allow-world"},  # CiliumClusterwideNetworkPolicy: no namespace
            {"name": "zz", "namespace": "temporal"},
            {"labels": ["reserved:io.cilium.policy.derived-from=allow-localhost-ingress"]},
        ],
    ))
    assert rec.policies == ("allow-world", "reserved:allow-localhost-ingress", "temporal/zz")


def test_denied_verdict_reads_denied_by_and_reason() -> None:
    rec = record(hubble_line(verdict="DROPPED", reason="POLICY_DENY",
                             ingress_denied_by=[{"name": "deny-test", "namespace": "temporal"}]))
    assert rec.verdict is Family.DROPPED and rec.reason == "POLICY_DENY"
    assert rec.policies == ("temporal/deny-test",)


def test_reason_from_number_when_text_absent() -> None:
    line = json.loads(hubble_line(event_type=1, verdict="DROPPED", reason="AUTH_REQUIRED"))
    del line["flow"]["drop_reason_desc"]
    assert record(json.dumps(line).encode()).reason == "AUTH_REQUIRED"


def test_audit_verdict() -> None:
    rec = record(hubble_line(verdict="AUDIT", reason="POLICY_DENIED"))
    assert rec.verdict is Family.AUDIT and rec.reason == "POLICY_DENIED"


@pytest.mark.parametrize("verdict", ["TRACED", "TRANSLATED", "ERROR"])
def test_verdict_events_without_a_family_are_ignored(verdict: str) -> None:
    assert decode_line(hubble_line(verdict=verdict)) is None


@pytest.mark.parametrize("event_type", [4, 129, 9])
def test_traces_and_l7_are_ignored(event_type: int) -> None:
    assert decode_line(hubble_line(event_type=event_type, verdict="FORWARDED")) is None


def test_non_policy_drop_and_replies_are_ignored() -> None:
    assert decode_line(hubble_line(event_type=1, verdict="DROPPED", reason="CT_MAP_INSERTION_FAILED")) is None
    assert decode_line(hubble_line(verdict="FORWARDED", is_reply=True)) is None


def test_drop_event() -> None:
    rec = record(hubble_line(event_type=1, verdict="DROPPED", reason="POLICY_DENIED"))
    assert rec.kind == HUBBLE_DROP and rec.policies == () and rec.reason == "POLICY_DENIED"
    assert rec.time_ns == 1714557600_000_000_000


def test_bare_legacy_flow_object() -> None:
    rec = record(hubble_line(envelope=False, verdict="DROPPED", reason="POLICY_DENIED",
                             ingress_denied_by=[{"name": "p", "namespace": "n"}]))
    assert rec.policies == ("n/p",) and rec.node == "kind-worker"


def test_lost_events_count_is_a_string() -> None:
    lost = decode_line(b'{"lost_events":{"source":"HUBBLE_RING_BUFFER","num_events_lost":"42","cpu":{"value":1}},'
                       b'"node_name":"n","time":"2024-01-01T00:00:00Z"}')
    assert lost == LostEvents(42, "HUBBLE_RING_BUFFER")


@pytest.mark.parametrize("kind", ["agent_event", "debug_event", "node_status"])
def test_non_flow_lines_are_ignored(kind: str) -> None:
    assert decode_line(json.dumps({kind: {"type": 1}, "node_name": "n"}).encode()) is None


def test_icmp_has_no_port_and_pairs_on_type() -> None:
    rec = record(hubble_line(l4={"ICMPv4": {"type": 8}}, verdict="DROPPED", reason="POLICY_DENIED"))
    assert (rec.protocol, rec.destination_port, rec.port_or_type) == ("ICMPv4", "", 8)
    echo_reply = record(hubble_line(l4={"ICMPv6": {}}))  # zero values omitted
    assert (echo_reply.protocol, echo_reply.destination_port) == ("ICMPv6", "")


@pytest.mark.parametrize(
    ("endpoint", "name", "namespace"),
    [
        ({"identity": 2, "labels": ["reserved:world"]}, "world", ""),
        ({"identity": 9, "labels": ["reserved:world-ipv4"]}, "world", ""),
        ({"identity": 1, "labels": ["reserved:host", "reserved:kube-apiserver"]}, "kube-apiserver", ""),
        ({"identity": 6, "labels": ["reserved:remote-node"]}, "remote-node", ""),
        ({"identity": 4}, "health", ""),
        ({"identity": 16777217, "labels": ["cidr:8.8.8.8/32", "reserved:world"]}, "world", ""),
        ({}, "unknown", ""),
        # a remote pod known only by identity and labels
        ({"identity": 4242, "labels": ["k8s:app=payment-worker", "k8s:io.kubernetes.pod.namespace=temporal-workers"]},
         "temporal-workers/payment-worker", "temporal-workers"),
        ({"namespace": "temporal", "pod_name": "temporal-frontend-7c9b6d5d8f-abcde",
          "workloads": [{"name": "frontend", "kind": "Deployment"}]}, "temporal/frontend", "temporal"),
        ({"namespace": "databases", "pod_name": "postgresql-0"}, "databases/postgresql", "databases"),
    ],
)
def test_peer_naming(endpoint: dict, name: str, namespace: str) -> None:
    rec = record(hubble_line(src=endpoint))
    assert (rec.source.name, rec.source.namespace) == (name, namespace)


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b'{"flow":{"event_type":{"type":"five"}}}',  # wrong type
        b'{"flow":{"time":"2024-01-01T00:00:00Z","verdict":"FORWARDED","event_type":{"type":5}',  # truncated
        b'{"flow":{"verdict":"DROPPED","event_type":{"type":5},"time":"yesterday","drop_reason_desc":"POLICY_DENIED"}}',
        b'{"lost_events":{"num_events_lost":"many"}}',
        b'{"flow":{"verdict":"FORWARDED","event_type":{"type":5},"source":{"labels":"k8s:app=x"}}}',
        b"[1,2,3]",
    ],
)
def test_malformed_lines_raise_decode_error(line: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_line(line)


def test_shared_hubble_samples_decode(shared_samples: Path) -> None:
    kinds: dict[str, int] = {}
    for path in sorted((shared_samples / "hubble").glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            if line.strip():
                rec = decode_line(line)
                key = type(rec).__name__ if rec is not None else "None"
                kinds[key] = kinds.get(key, 0) + 1
    # 4 policy verdicts (2 in l7-redirected, 1 each in tcp/udp-selected) and 2 policy drops (the docs
    # export has one POLICY_DENIED and one INVALID_SOURCE_IP drop; the printer test one POLICY_DENIED)
    assert kinds["FlowRecord"] == 6
    assert kinds["LostEvents"] == 1


@pytest.mark.parametrize(
    ("line", "skipped"),
    [
        (b'{"flow":{"verdict":"FORWARDED","event_type":{"type":4,"sub_type":3}}}\n', True),
        (b'{"flow":{"verdict":"FORWARDED","event_type": {"type": 129}}}', True),  # protojson may add spaces
        (b'{"flow":{"verdict":"FORWARDED","event_type":{"type":5}}}', False),
        (b'{"flow":{"verdict":"DROPPED","event_type":{"type":1,"sub_type":133}}}', False),
        (b'{"flow":{"verdict":"FORWARDED","event_type":{"type":4', False),  # truncated: decoded → invalid
        (b'{"flow":{"verdict":"FORWARDED","event_type":{"sub_type":3}}}', False),  # type 0 omitted
        (b'{"flow":{"verdict":"FORWARDED","event_type":{"type":12}}}', True),
        (b'{"flow":{"verdict":"FORWARDED","event_type":{"type":15}}}', True),
    ],
)
def test_trace_prefilter(line: bytes, skipped: bool) -> None:
    from exporter.decoders.hubble import _cannot_count

    assert _cannot_count(line) is skipped


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        ("2024-05-01T10:00:00Z", 1714557600_000_000_000),
        ("2024-05-01T10:00:00.5Z", 1714557600_500_000_000),
        ("2024-05-01T10:00:00.123456789Z", 1714557600_123456789),
        ("2024-05-01T12:00:00.000001+02:00", 1714557600_000001000),
        ("2024-05-01T09:30:00-00:30", 1714557600_000_000_000),
    ],
)
def test_timestamps(value: str, ns: int) -> None:
    from exporter.timeparse import parse_rfc3339_ns

    assert parse_rfc3339_ns(value) == ns


@pytest.mark.parametrize("value", ["2024-05-01", "2024-05-01T10:00:00.Z", "2024-05-01T10:00:00.1234567890Z",
                                   "2024-05-01T10:00:00.x1Z",
                                   "2024-05-01T10:00:00+0200", "2024-05-01T10:00:00"])
def test_bad_timestamps(value: str) -> None:
    from exporter.timeparse import parse_rfc3339_ns

    with pytest.raises(ValueError):
        parse_rfc3339_ns(value)


def test_seconds_parse_checks_but_drops_the_fraction() -> None:
    from exporter.timeparse import parse_rfc3339_seconds

    assert parse_rfc3339_seconds("2024-05-01T10:00:00.999999999Z") == 1714557600
    assert parse_rfc3339_seconds("2024-05-01T10:00:00Z") == 1714557600
    assert parse_rfc3339_seconds("2024-05-01T12:00:00.5+02:00") == 1714557600
    for bad in ("2024-05-01T10:00:00.x1Z", "2024-05-01T10:00:00.1234567890Z", "2024-05-01T10:00:00.Z"):
        with pytest.raises(ValueError):
            parse_rfc3339_seconds(bad)
