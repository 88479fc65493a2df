"""The exporter's own NetworkPolicy is zero-trust: deny by default, then exactly the documented paths.

ingress: Prometheus on the metrics port (and, for the Goldmane receiver, Goldmane on the push port);
egress: DNS, the API server's ports, and the overlay's flow source.
"""

from __future__ import annotations

from typing import Any

from tests.deploy.manifests import Obj, Rendered, containers

PROMETHEUS = ({"kubernetes.io/metadata.name": "monitoring"}, {"app.kubernetes.io/name": "prometheus"})
DNS = ({"kubernetes.io/metadata.name": "kube-system"}, {"k8s-app": "kube-dns"})
SOURCE_EGRESS = {
    "hubble-relay": (({"kubernetes.io/metadata.name": "kube-system"}, {"k8s-app": "hubble-relay"}), {("TCP", 4245)}),
}
SOURCE_INGRESS = {
    "calico-goldmane": (({"kubernetes.io/metadata.name": "calico-system"}, {"k8s-app": "goldmane"}), {("TCP", "push")}),
}


def _peer(peer: Obj) -> tuple[dict[str, str], dict[str, str]] | str:
    if "ipBlock" in peer:
        assert not peer["ipBlock"].get("except"), peer
        return str(peer["ipBlock"]["cidr"])
    return peer["namespaceSelector"]["matchLabels"], peer["podSelector"]["matchLabels"]


def _ports(rule: Obj) -> set[tuple[str, Any]]:
    ports = rule.get("ports")
    assert ports, f"a rule without ports admits every port: {rule}"
    for port in ports:
        assert "endPort" not in port, port
    return {(p.get("protocol", "TCP"), p["port"]) for p in ports}


def _rules(rules: list[Obj], key: str) -> list[tuple[list[Any], set[tuple[str, Any]]]]:
    out = []
    for rule in rules:
        peers = rule.get(key)
        assert peers, f"a rule without {key} admits every peer: {rule}"
        out.append(([_peer(p) for p in peers], _ports(rule)))
    return out


def _policy(overlay: Rendered) -> Obj:
    [policy] = overlay.kind("NetworkPolicy")
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"], "both directions default-deny"
    return policy


def test_ingress_only_from_prometheus_and_the_pushing_source(overlay: Rendered) -> None:
    rules = _rules(_policy(overlay)["spec"].get("ingress", []), "from")
    expected = [([PROMETHEUS], {("TCP", "metrics")})]
    if overlay.name in SOURCE_INGRESS:
        peer, ports = SOURCE_INGRESS[overlay.name]
        expected.append(([peer], ports))
    assert rules == expected


def test_egress_only_to_dns_the_api_server_and_the_flow_source(overlay: Rendered) -> None:
    rules = _rules(_policy(overlay)["spec"].get("egress", []), "to")
    expected: list[tuple[list[Any], set[tuple[str, Any]]]] = [
        ([DNS], {("UDP", 53), ("TCP", 53)}),
        (["0.0.0.0/0", "::/0"], {("TCP", 443), ("TCP", 6443)}),
    ]
    if overlay.name in SOURCE_EGRESS:
        peer, ports = SOURCE_EGRESS[overlay.name]
        expected.append(([peer], ports))
    assert rules == expected


def test_cilium_shapes_reach_the_api_server_by_entity(overlay: Rendered) -> None:
    cilium = overlay.name.startswith("hubble-")
    policies = overlay.kind("CiliumNetworkPolicy")
    assert bool(policies) == cilium, f"{overlay.name}: CiliumNetworkPolicy only on Cilium shapes"
    for policy in policies:
        assert "ingress" not in policy["spec"], "ingress stays with the NetworkPolicy"
        [rule] = policy["spec"]["egress"]
        assert rule["toEntities"] == ["kube-apiserver"]
        [to_ports] = rule["toPorts"]
        assert {(p["protocol"], p["port"]) for p in to_ports["ports"]} == {("TCP", "443"), ("TCP", "6443")}


def test_named_policy_ports_exist_on_the_pod(overlay: Rendered) -> None:
    names = {p["name"] for c in containers(overlay.workload()) for p in c.get("ports", []) if "name" in p}
    spec = _policy(overlay)["spec"]
    for rule in spec.get("ingress", []):
        for port in rule["ports"]:
            if isinstance(port["port"], str):
                assert port["port"] in names, f"{overlay.name}: ingress names port {port['port']}, pod has {names}"
