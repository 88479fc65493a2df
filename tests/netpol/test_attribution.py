"""PolicyIndex: isolating / allowing / named, updates and caching."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.netpol.attribution import Attribution, Peer, PolicyIndex
from exporter.netpol.evaluator import ContainerPort


def netpol(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": ns, "name": name},
        "spec": spec,
    }


DEFAULT_DENY = netpol("temporal", "default-deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
FRONTEND = netpol(
    "temporal",
    "temporal-frontend-policy",
    {
        "podSelector": {"matchLabels": {"app": "temporal-frontend"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"app": "temporal-worker"}}}], "ports": [{"port": 7233}]},
            {
                "from": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                        "podSelector": {"matchLabels": {"app": "prometheus"}},
                    }
                ],
                "ports": [{"port": "metrics"}],
            },
        ],
    },
)
FRONTEND_LABELS = {"app": "temporal-frontend", "pod-template-hash": "abc"}


@pytest.fixture
def index() -> PolicyIndex:
    idx = PolicyIndex()
    idx.upsert_policy(DEFAULT_DENY)
    idx.upsert_policy(FRONTEND)
    return idx


def test_drop_names_the_most_specific_isolating_policy(index: PolicyIndex) -> None:
    got = index.attribute("temporal", FRONTEND_LABELS, "ingress", 8080, "TCP")
    assert got == Attribution(
        isolating=("temporal/default-deny-all", "temporal/temporal-frontend-policy"),
        allowing=(),
        named=("temporal/temporal-frontend-policy",),
    )
    assert not got.allowed
    assert got.policy_label == "temporal/temporal-frontend-policy"


def test_allowing_on_port_only_and_with_peer(index: PolicyIndex) -> None:
    any_peer = index.attribute("temporal", FRONTEND_LABELS, "ingress", 7233, "tcp")
    assert any_peer.allowing == ("temporal/temporal-frontend-policy",)
    worker = Peer(namespace="temporal", labels={"app": "temporal-worker"})
    assert index.attribute("temporal", FRONTEND_LABELS, "ingress", 7233, "TCP", worker).allowed
    stranger = Peer(namespace="temporal", labels={"app": "other"})
    denied = index.attribute("temporal", FRONTEND_LABELS, "ingress", 7233, "TCP", stranger)
    assert denied.allowing == () and denied.named == ("temporal/temporal-frontend-policy",)
    outside = Peer(ip="203.0.113.9")
    assert not index.attribute("temporal", FRONTEND_LABELS, "ingress", 7233, "TCP", outside).allowed
    # A UDP packet to the TCP port is not allowed.
    assert not index.attribute("temporal", FRONTEND_LABELS, "ingress", 7233, "UDP").allowed


def test_named_port_needs_the_pods_container_ports(index: PolicyIndex) -> None:
    prom = Peer(namespace="monitoring", labels={"app": "prometheus"})
    without = index.attribute("temporal", FRONTEND_LABELS, "ingress", 9090, "TCP", prom)
    assert without.allowing == ()
    ports = [ContainerPort(9090, "TCP", "metrics")]
    with_ports = index.attribute("temporal", FRONTEND_LABELS, "ingress", 9090, "TCP", prom, pod_ports=ports)
    assert with_ports.allowing == ("temporal/temporal-frontend-policy",)


def test_namespace_labels_default_and_update(index: PolicyIndex) -> None:
    ports = [ContainerPort(9090, "TCP", "metrics")]
    prom = Peer(namespace="monitoring", labels={"app": "prometheus"})
    # Unknown namespace: kubernetes.io/metadata.name is assumed, so the selector matches.
    assert index.attribute("temporal", FRONTEND_LABELS, "ingress", 9090, "TCP", prom, pod_ports=ports).allowed
    index.set_namespace("monitoring", {"team": "obs"})  # metadata.name label added
    assert index.attribute("temporal", FRONTEND_LABELS, "ingress", 9090, "TCP", prom, pod_ports=ports).allowed
    other = Peer(namespace="other", labels={"app": "prometheus"})
    assert not index.attribute("temporal", FRONTEND_LABELS, "ingress", 9090, "TCP", other, pod_ports=ports).allowed


def test_not_isolated_and_direction_defaulting(index: PolicyIndex) -> None:
    assert index.attribute("elsewhere", {"app": "x"}, "egress", 53, "UDP") == Attribution((), (), ())
    # The frontend policy only lists Ingress: egress is isolated by default-deny alone.
    got = index.attribute("temporal", FRONTEND_LABELS, "egress", 53, "UDP")
    assert got.isolating == got.named == ("temporal/default-deny-all",)
    with pytest.raises(ValueError, match="direction"):
        index.attribute("temporal", FRONTEND_LABELS, "sideways", 53, "UDP")


def test_ties_name_all_sorted_and_updates_invalidate_cache(index: PolicyIndex) -> None:
    index.upsert_policy(netpol("temporal", "b-tier", {"podSelector": {"matchLabels": {"tier": "web"}}}))
    index.upsert_policy(
        netpol("temporal", "a-frontend-2", {"podSelector": {"matchLabels": {"app": "temporal-frontend"}}})
    )
    labels = {**FRONTEND_LABELS, "tier": "web"}
    got = index.attribute("temporal", labels, "ingress", 1, "TCP")
    assert got.named == ("temporal/a-frontend-2", "temporal/b-tier", "temporal/temporal-frontend-policy")
    assert got.policy_label == "temporal/a-frontend-2,temporal/b-tier,temporal/temporal-frontend-policy"
    index.delete_policy("temporal", "temporal-frontend-policy")
    index.delete_policy("temporal", "b-tier")
    got = index.attribute("temporal", labels, "ingress", 1, "TCP")
    assert got.named == ("temporal/a-frontend-2",)
    assert len(index) == 2


def test_invalid_policy_is_recorded_not_indexed(index: PolicyIndex) -> None:
    bad = netpol("temporal", "bad", {"podSelector": {}, "ingress": [{"from": [{}]}]})
    index.upsert_policy(bad)
    assert "temporal/bad" in index.invalid and "must specify a peer" in index.invalid["temporal/bad"]
    assert "temporal/bad" not in index.attribute("temporal", {}, "ingress", 1, "TCP").isolating
    index.delete_policy("temporal", "bad")
    assert index.invalid == {}


def test_ip_peer_against_ip_block() -> None:
    idx = PolicyIndex()
    idx.upsert_policy(
        netpol(
            "db",
            "pg",
            {
                "podSelector": {},
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}],
            },
        )
    )
    assert idx.attribute("db", {}, "ingress", 5432, "TCP", Peer(ip="10.2.3.4")).allowed
    assert not idx.attribute("db", {}, "ingress", 5432, "TCP", Peer(ip="10.1.3.4")).allowed
    pod_in_range = Peer(namespace="app", labels={"a": "b"}, ip="10.3.0.1")
    assert idx.attribute("db", {}, "ingress", 5432, "TCP", pod_in_range).allowed


def test_many_policies_repeated_calls_are_cached() -> None:
    idx = PolicyIndex()
    for i in range(1000):
        idx.upsert_policy(netpol(f"ns{i % 10}", f"p{i}", {"podSelector": {"matchLabels": {"app": f"a{i % 50}"}}}))
    first = idx.attribute("ns3", {"app": "a3"}, "ingress", 80, "TCP")
    assert first.isolating == tuple(sorted(f"ns3/p{i}" for i in range(1000) if i % 10 == 3 and i % 50 == 3))
    assert idx.isolating_policies("ns3", {"app": "a3"}, "ingress") is idx.isolating_policies(
        "ns3", {"app": "a3"}, "ingress"
    )


def test_cached_results_follow_namespace_and_policy_changes() -> None:
    idx = PolicyIndex()
    idx.upsert_policy(
        netpol(
            "app",
            "web",
            {
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "obs"}}}]}],
            },
        )
    )
    peer = Peer(namespace="monitoring", labels={"app": "prometheus"})
    assert not idx.attribute("app", {"app": "web"}, "ingress", 80, "TCP", peer).allowed
    idx.set_namespace("monitoring", {"team": "obs"})
    assert idx.attribute("app", {"app": "web"}, "ingress", 80, "TCP", peer).allowed
    idx.delete_namespace("monitoring")
    assert not idx.attribute("app", {"app": "web"}, "ingress", 80, "TCP", peer).allowed
    idx.upsert_policy(netpol("app", "web", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [{}]}))
    assert idx.attribute("app", {"app": "web"}, "ingress", 80, "TCP", peer).allowed
    idx.delete_policy("app", "web")
    assert not idx.attribute("app", {"app": "web"}, "ingress", 80, "TCP", peer).isolated


def test_cache_limit_keeps_answers_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("exporter.netpol.attribution._CACHE_LIMIT", 3)
    idx = PolicyIndex()
    idx.upsert_policy(DEFAULT_DENY)
    idx.upsert_policy(FRONTEND)
    for port in (7233, 1, 2, 3, 4, 7233, 5):
        got = idx.attribute("temporal", FRONTEND_LABELS, "ingress", port, "TCP")
        assert got.allowed == (port == 7233)
    assert idx._result_count <= 3


def test_index_agrees_with_the_evaluator_on_random_policies() -> None:
    """The indexed, cached lookup against a brute-force evaluation of the same policies."""
    import random

    from exporter.netpol.evaluator import Endpoint, evaluate_direction
    from exporter.netpol.labels import Labels
    from exporter.netpol.policy import parse_policy

    rng = random.Random(7)
    keys, values = ["app", "tier", "env"], ["a", "b", "c"]

    def selector() -> dict[str, Any]:
        sel: dict[str, Any] = {}
        if rng.random() < 0.7:
            sel["matchLabels"] = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(1, 2))}
        if rng.random() < 0.4:
            op = rng.choice(["In", "NotIn", "Exists", "DoesNotExist"])
            expr: dict[str, Any] = {"key": rng.choice(keys), "operator": op}
            if op in ("In", "NotIn"):
                expr["values"] = rng.sample(values, 2)
            sel["matchExpressions"] = [expr]
        return sel

    def labels() -> dict[str, str]:
        return {k: rng.choice(values) for k in keys if rng.random() < 0.7}

    objs = []
    for i in range(60):
        rule: dict[str, Any] = {"ports": [{"port": rng.choice([80, 443]), "protocol": rng.choice(["TCP", "UDP"])}]}
        if rng.random() < 0.7:
            rule["from"] = [
                {"podSelector": selector(), **({"namespaceSelector": selector()} if rng.random() < 0.5 else {})}
            ]
        spec = {
            "podSelector": selector(),
            "ingress": [rule],
            "policyTypes": rng.choice([["Ingress"], ["Egress"], ["Ingress", "Egress"]]),
        }
        objs.append(netpol(rng.choice(["n1", "n2"]), f"p{i}", spec))
    idx = PolicyIndex()
    for obj in objs:
        idx.upsert_policy(obj)
    ns_labels = {"n1": labels(), "n2": labels()}
    for name, lab in ns_labels.items():
        idx.set_namespace(name, lab)
    policies = [parse_policy(o) for o in objs]
    checked = 0
    for _ in range(400):
        ns, other_ns = rng.choice(["n1", "n2"]), rng.choice(["n1", "n2"])
        pod_labels, peer_labels = labels(), labels()
        direction, port, proto = rng.choice(["ingress", "egress"]), rng.choice([80, 443]), rng.choice(["TCP", "UDP"])
        peer = Peer(namespace=other_ns, labels=peer_labels)
        got = idx.attribute(ns, pod_labels, direction, port, proto, peer)
        pod = Endpoint("p", ns, Labels(pod_labels), Labels({"kubernetes.io/metadata.name": ns, **ns_labels[ns]}))
        far = Endpoint(
            "q", other_ns, Labels(peer_labels), Labels({"kubernetes.io/metadata.name": other_ns, **ns_labels[other_ns]})
        )
        want = evaluate_direction(policies, pod, far, direction, port, proto)
        assert (got.isolating, got.allowing) == (want.isolating, want.allowing)
        checked += bool(want.isolating)
    assert checked > 100
