from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter.decoders.calico import decode_line
from exporter.decoders.calico_policies import PolicyStringError, deciding_hit, parse_policy_string
from exporter.model import DecodeError, Family, FlowRecord
from exporter.pipeline import Pipeline
from tests.core.flows import calico_line


@pytest.mark.parametrize(
    ("text", "label", "profile"),
    [
        # oldest: idx|tier|name|action
        ("0|__PROFILE__|__PROFILE__.kns.kube-system|allow", "", True),
        ("0|default|default.allow-dns|allow", "allow-dns", False),
        # 3.30-3.31 / Enterprise: idx|tier|ns/tier.name|action|rule
        ("0|default|temporal/knp.default.temporal-frontend-policy|allow|2", "temporal/temporal-frontend-policy", False),
        ("0|default|temporal/default.allow-web|allow|0", "temporal/allow-web", False),
        ("0|tier2|tier2.block-egress|deny|0", "tier2.block-egress", False),
        ("1|app-hipstershop|hipstershop/app-hipstershop.checkoutservice|deny|-1",
         "hipstershop/app-hipstershop.checkoutservice", False),
        ("1|tier|namespace/tier.staged:name|deny|0", "namespace/tier.name", False),
        ("1|default|namespace/staged:knp.default.name|deny|3", "namespace/name", False),
        ("1|tier|tier.staged:name.with.dots|deny|2", "tier.name.with.dots", False),
        ("3|adminnetworkpolicy|kanp.adminnetworkpolicy.name|pass|4", "adminnetworkpolicy.name", False),
        ("1|__PROFILE__|__PROFILE__.ksa.svcacct|allow|0", "", True),
        # 3.32+: idx|tier|kind:ns/name|action|rule
        ("0|tier|gnp:name|allow|0", "tier.name", False),
        ("0|tier|np:namespace/name|allow|1", "namespace/tier.name", False),
        ("0|tier|np:namespace/tier.name|allow|1", "namespace/tier.name", False),  # never doubled
        ("0|default|knp:namespace/name|allow|2", "namespace/name", False),
        ("1|default|sknp:namespace/name.with.dots|deny|3", "namespace/name.with.dots", False),
        ("0|kube-admin|kcnp:name|deny|1", "kube-admin.name", False),
        ("2|kube-admin|gnp:kube-admin.policy1|allow|-1", "kube-admin.policy1", False),
        ("0|tier2|snp:default/np2-1|deny|-1", "default/tier2.np2-1", False),
        ("1|__PROFILE__|pro:kns.default|allow|0", "", True),
    ],
)
def test_policy_string_syntaxes(text: str, label: str, profile: bool) -> None:
    hit = parse_policy_string(text)
    assert (hit.label, hit.profile) == (label, profile)


@pytest.mark.parametrize("text", ["0|tier|tier.name|allow|0|extra", "x|t|t.n|allow|0", "0|t|t.n|maybe|0",
                                  "0|t||allow|0", "just-a-name"])
def test_bad_policy_strings(text: str) -> None:
    with pytest.raises(PolicyStringError):
        parse_policy_string(text)


def test_every_upstream_test_vector_parses(shared_samples: Path) -> None:
    for name in ("policy_strings_legacy_goldmane_methods_test_v3.31.0.txt",
                 "policy_strings_v3.32_goldmane_methods_test_master.txt"):
        text = (shared_samples / "calico" / name).read_text()
        valid_block = text.split("func TestInvalidStrings")[0]
        vectors = re.findall(r'"(\d+\|[^"]+)"', valid_block)
        assert len(vectors) > 20
        for vector in vectors:
            hit = parse_policy_string(vector)
            assert hit.profile or hit.label, vector
            assert not hit.label.startswith(("knp:", "np:", "gnp:", "staged:", "knp.default.")), vector
            assert "staged:" not in hit.label, vector


def test_deciding_hit() -> None:
    hits = [parse_policy_string(s) for s in (
        "1|default|temporal/knp.default.b|allow|0", "0|security|security.tenant|pass|0")]
    assert deciding_hit(hits, "allow").label == "temporal/b"  # type: ignore[union-attr]
    hits = [parse_policy_string(s) for s in ("0|t|t.a|allow|0", "1|t|t.b|allow|0")]
    assert deciding_hit(hits, "allow").label == "t.b"  # type: ignore[union-attr]
    assert deciding_hit(hits, "deny") is None


def test_deny_record_counts_packets_under_enforced_deny() -> None:
    rec = decode_line(calico_line(packets_in=5, packets_out=2))
    assert isinstance(rec, FlowRecord)
    assert rec.verdict is Family.DROPPED and rec.packets == 7 and rec.reason == "POLICY_DENIED"
    assert rec.policies == ("temporal/temporal-history-policy",)
    assert (rec.source.name, rec.destination.name) == ("network-policy-test/test-client", "temporal/temporal-history")
    assert (rec.direction, rec.destination_port, rec.protocol) == ("ingress", "7235", "TCP")


def test_enforced_preferred_over_all_and_pending_never_used() -> None:
    rec = decode_line(calico_line(action="allow", policies={
        "all_policies": ["0|default|temporal/knp.default.old|allow|0"],
        "enforced_policies": ["0|default|temporal/knp.default.new|allow|0"],
        "pending_policies": ["0|default|temporal/staged:knp.default.staged-deny|deny|0"]}))
    assert isinstance(rec, FlowRecord) and rec.policies == ("temporal/new",)
    rec = decode_line(calico_line(action="allow", policies={
        "pending_policies": ["0|default|temporal/staged:knp.default.staged-deny|deny|0"]}))
    assert isinstance(rec, FlowRecord) and rec.policies == () and rec.verdict is Family.ALLOWED


def test_profile_allow_and_peers() -> None:
    rec = decode_line(calico_line(
        action="allow", reporter="src", proto="icmp", dest_port=None, dest_type="net", dest_name_aggr="pub",
        dest_namespace="-", policies={"all_policies": ["0|__PROFILE__|__PROFILE__.kns.default|allow"]}))
    assert isinstance(rec, FlowRecord)
    assert rec.policies == () and rec.direction == "egress"
    assert (rec.destination.name, rec.destination.namespace, rec.protocol, rec.destination_port) == (
        "world", "", "ICMPv4", "")
    hep = decode_line(calico_line(source_type="hep", source_name_aggr="node-1", source_namespace="-"))
    assert isinstance(hep, FlowRecord) and hep.source.name == "host"
    netset = decode_line(calico_line(source_type="ns", source_name_aggr="blocked-ips", source_namespace="security"))
    assert isinstance(netset, FlowRecord) and netset.source.name == "security/blocked-ips"
    labels_only = decode_line(calico_line(source_name_aggr="-", source_labels={"labels": ["k8s-app=kube-dns"]}))
    assert isinstance(labels_only, FlowRecord) and labels_only.source.name == "network-policy-test/kube-dns"
    # the same record but for its labels: another peer (the decoder's template cache keys the labels then)
    other = decode_line(calico_line(source_name_aggr="-", source_labels={"labels": ["k8s-app=coredns"]}))
    assert isinstance(other, FlowRecord) and other.source.name == "network-policy-test/coredns"


@pytest.mark.parametrize("line", [b"{", b'{"action":"maybe","packets_in":1}', b'{"action":"deny","packets_in":"5"}',
                                  b'{"action":"deny","packets_in":1,"policies":{"all_policies":["bogus"]}}'])
def test_malformed(line: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_line(line)


def test_calico_enterprise_shapes() -> None:
    """Our own lines in the shapes Calico Enterprise writes (calico_enterprise_shapes.jsonl): the fake log
    generator's allowed records with process and TCP stats, the Elasticsearch document form (host,
    @timestamp, all four policy lists, a pass hit before the allow), and a deny at aggregation level 1
    (IPs kept, source port aggregated) where a security tier passes and the app tier's end denies."""
    import json

    lines = (Path(__file__).parent / "calico_enterprise_shapes.jsonl").read_bytes().splitlines()
    pipeline = Pipeline()
    pipeline.ingest(pipeline.source("calico:shapes", "calico"), lines)
    expected = {"allow": 0, "deny": 0}
    for line in lines:
        rec = json.loads(line)
        expected[rec["action"]] += (rec.get("packets_in") or 0) + (rec.get("packets_out") or 0)
    total = {f: sum(e[0] for e in pipeline.stores[f].series.values()) for f in Family}
    assert total[Family.ALLOWED] == expected["allow"] == 89
    assert total[Family.DROPPED] == expected["deny"] == 5
    denied = pipeline.stores[Family.DROPPED]
    assert denied.value(policy="hipstershop/app-hipstershop.checkoutservice", direction="ingress",
                        source="default/multitool", source_namespace="default",
                        destination="hipstershop/checkoutservice", destination_namespace="hipstershop",
                        destination_port="5050", protocol="TCP", reason="POLICY_DENIED") == 5
    allowed = {key[0] for key in pipeline.stores[Family.ALLOWED].series}
    assert allowed == {"default-allow", "kube-system/dns-egress"}
    assert pipeline.self_metrics.sources["calico:shapes"].invalid == 0
