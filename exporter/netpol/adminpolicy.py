"""AdminNetworkPolicy and BaselineAdminNetworkPolicy (`policy.networking.k8s.io/v1alpha1`) and
ClusterNetworkPolicy (`v1alpha2`), converted into the tiered model of `exporter.netpol.calico`.

Upstream order: AdminNetworkPolicies by priority (lower first), then NetworkPolicies, then the
BaselineAdminNetworkPolicy; a `Pass` hands the decision to the next layer. Calico enforces them the
same way, as tiers: `adminnetworkpolicy` (order 1000, defaultAction Pass) before `default`
(1,000,000) before `baselineadminnetworkpolicy` (10,000,000, Pass); ClusterNetworkPolicies go to
`kube-admin` and `kube-baseline` with the same orders. Policies are ordered by priority in their tier,
so Calico tiers with other orders fall among them as Calico documents. Rules are split per protocol
group and peer as Calico's converter splits them (libcalico-go k8s/conversion), which fixes their
rule indexes. Policy labels are the contract's: `adminnetworkpolicy.<name>`,
`baselineadminnetworkpolicy.<name>`, `kube-admin.<name>`, `kube-baseline.<name>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.decoders.calico_policies import policy_value
from exporter.netpol.calico.model import (
    ADMIN_TIER,
    ALLOW,
    BASELINE_TIER,
    DENY,
    KUBE_ADMIN_TIER,
    KUBE_BASELINE_TIER,
    PASS,
    AllOf,
    EntityMatch,
    HostsOnly,
    LabelMatcher,
    NamespaceLabels,
    Policy,
    PortSpec,
    Rule,
    protocol_number,
)
from exporter.netpol.errors import PolicyInvalid
from exporter.netpol.labels import as_list, as_mapping, parse_selector, whole_number
from exporter.netpol.policy import IPNetwork, parse_network, valid_port_name

API_V1ALPHA1 = "policy.networking.k8s.io/v1alpha1"
API_V1ALPHA2 = "policy.networking.k8s.io/v1alpha2"
KINDS = ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "ClusterNetworkPolicy")
_PROTOCOLS = ("TCP", "UDP", "SCTP")

# A converted rule's peer part: where it goes (source for ingress, destination for egress).
_Peer = tuple[LabelMatcher | None, tuple[IPNetwork, ...], str | None]


def _pods(obj: Any, path: str) -> LabelMatcher:
    pods = as_mapping(obj, path)
    namespaces = NamespaceLabels(parse_selector(pods.get("namespaceSelector"), f"{path}.namespaceSelector"))
    if "podSelector" not in pods:
        raise PolicyInvalid(f"{path}.podSelector", "is required")
    return AllOf((namespaces, parse_selector(pods.get("podSelector"), f"{path}.podSelector")))


def _subject(obj: Any) -> LabelMatcher:
    subject = as_mapping(obj, "spec.subject")
    present = [k for k in ("namespaces", "pods") if subject.get(k) is not None]
    if len(present) != 1:
        raise PolicyInvalid("spec.subject", "must set exactly one of namespaces, pods")
    if present[0] == "namespaces":
        return NamespaceLabels(parse_selector(subject["namespaces"], "spec.subject.namespaces"))
    return _pods(subject["pods"], "spec.subject.pods")


def _peer(obj: Any, path: str, egress: bool) -> _Peer:
    peer = as_mapping(obj, path)
    allowed = ("namespaces", "pods", "nodes", "networks", "domainNames") if egress else ("namespaces", "pods")
    unknown = sorted(set(peer) - set(allowed))
    if unknown:
        raise PolicyInvalid(path, f"unknown field(s) {unknown}")
    present = [k for k in allowed if peer.get(k) is not None]
    if len(present) != 1:
        raise PolicyInvalid(path, f"must set exactly one of {', '.join(allowed)}")
    key = present[0]
    if key == "namespaces":
        return (NamespaceLabels(parse_selector(peer[key], f"{path}.namespaces")), (), None)
    if key == "pods":
        return (_pods(peer[key], f"{path}.pods"), (), None)
    if key == "nodes":
        return (HostsOnly(parse_selector(peer[key], f"{path}.nodes")), (), None)
    if key == "networks":
        raw = as_list(peer[key], f"{path}.networks") or []
        nets = tuple(parse_network(n, f"{path}.networks[{i}]") for i, n in enumerate(raw))
        if not nets:
            raise PolicyInvalid(f"{path}.networks", "must list at least one CIDR")
        return (None, nets, None)
    return (None, (), "domain-names")  # FQDN peers: resolved at run time, not offline


def _v1alpha1_ports(obj: Any, path: str) -> list[tuple[str | None, PortSpec | None]]:
    """ANP `ports`: portNumber, namedPort, portRange → (protocol, port) pairs."""
    pairs: list[tuple[str | None, PortSpec | None]] = []
    for i, raw in enumerate(as_list(obj, path) or []):
        at = f"{path}[{i}]"
        entry = as_mapping(raw, at)
        present = [k for k in ("portNumber", "namedPort", "portRange") if entry.get(k) is not None]
        if len(present) != 1:
            raise PolicyInvalid(at, "must set exactly one of portNumber, namedPort, portRange")
        key = present[0]
        if key == "namedPort":
            name = entry[key]
            if not isinstance(name, str) or not valid_port_name(name):
                raise PolicyInvalid(f"{at}.namedPort", f"invalid port name {name!r}")
            pairs.append((None, PortSpec(name=name)))
            continue
        spec = as_mapping(entry[key], f"{at}.{key}")
        protocol = spec.get("protocol") or "TCP"
        if protocol not in _PROTOCOLS:
            raise PolicyInvalid(f"{at}.{key}.protocol", f"must be TCP, UDP or SCTP, got {protocol!r}")
        if key == "portNumber":
            port = whole_number(spec.get("port"), f"{at}.portNumber.port", 1, 65535)
            pairs.append((protocol, PortSpec(port, port)))
        else:
            start = whole_number(spec.get("start"), f"{at}.portRange.start", 1, 65535)
            end = whole_number(spec.get("end"), f"{at}.portRange.end", 1, 65535)
            if end < start:
                raise PolicyInvalid(f"{at}.portRange.end", f"must not be below start ({start}), got {end}")
            pairs.append((protocol, PortSpec(start, end)))
    return pairs


def _v1alpha2_protocols(obj: Any, path: str) -> list[tuple[str | None, PortSpec | None]]:
    """CNP `protocols`: tcp/udp/sctp with an optional destinationPort (number or range), or
    destinationNamedPort → (protocol, port) pairs."""
    pairs: list[tuple[str | None, PortSpec | None]] = []
    for i, raw in enumerate(as_list(obj, path) or []):
        at = f"{path}[{i}]"
        entry = as_mapping(raw, at)
        present = [k for k in ("tcp", "udp", "sctp", "destinationNamedPort") if entry.get(k) is not None]
        if len(present) != 1:
            raise PolicyInvalid(at, "must set exactly one of tcp, udp, sctp, destinationNamedPort")
        key = present[0]
        if key == "destinationNamedPort":
            name = entry[key]
            if not isinstance(name, str) or not valid_port_name(name):
                raise PolicyInvalid(f"{at}.destinationNamedPort", f"invalid port name {name!r}")
            pairs.append((None, PortSpec(name=name)))
            continue
        dest = as_mapping(as_mapping(entry[key], f"{at}.{key}").get("destinationPort"), f"{at}.{key}.destinationPort")
        where = f"{at}.{key}.destinationPort"
        if dest.get("number") is not None:
            port = whole_number(dest["number"], f"{where}.number", 1, 65535)
            pairs.append((key.upper(), PortSpec(port, port)))
        elif dest.get("range") is not None:
            rng = as_mapping(dest["range"], f"{where}.range")
            start = whole_number(rng.get("start"), f"{where}.range.start", 1, 65535)
            end = whole_number(rng.get("end"), f"{where}.range.end", 1, 65535)
            if end < start:
                raise PolicyInvalid(f"{where}.range.end", f"must not be below start ({start}), got {end}")
            pairs.append((key.upper(), PortSpec(start, end)))
        else:
            pairs.append((key.upper(), None))  # every port of the protocol
    return pairs


def _group(pairs: list[tuple[str | None, PortSpec | None]]) -> list[tuple[str | None, tuple[PortSpec, ...]]]:
    """Ports grouped by protocol, sorted by protocol name ("" = named ports, any protocol); no
    ports = one group matching every protocol (as unpackCNPProtocols groups them)."""
    if not pairs:
        return [(None, ())]
    groups: dict[str, list[PortSpec]] = {}
    whole: set[str] = set()
    for protocol, spec in pairs:
        key = protocol or ""
        groups.setdefault(key, [])
        if spec is None:
            whole.add(key)
        else:
            groups[key].append(spec)
    return [(key or None, () if key in whole else tuple(groups[key])) for key in sorted(groups)]


def _rules(raw: list[Any], path: str, egress: bool, v1alpha2: bool, actions: dict[str, str]) -> tuple[Rule, ...]:
    peers_key = "to" if egress else "from"
    converted: list[Rule] = []
    for i, obj in enumerate(raw):
        at = f"{path}[{i}]"
        rule = as_mapping(obj, at)
        action = rule.get("action")
        if action not in actions:
            raise PolicyInvalid(f"{at}.action", f"must be {' or '.join(actions)}, got {action!r}")
        peers = as_list(rule.get(peers_key), f"{at}.{peers_key}") or []
        if not peers:
            raise PolicyInvalid(f"{at}.{peers_key}", "must list at least one peer")
        parsed = [_peer(p, f"{at}.{peers_key}[{j}]", egress) for j, p in enumerate(peers)]
        pairs = (_v1alpha2_protocols(rule.get("protocols"), f"{at}.protocols") if v1alpha2
                 else _v1alpha1_ports(rule.get("ports"), f"{at}.ports"))
        for protocol, ports in _group(pairs):
            number = protocol_number(protocol) if protocol else None
            for selector, nets, unsupported in parsed:
                peer = EntityMatch(selector=selector, nets=nets, unsupported=unsupported)
                if egress:
                    peer = EntityMatch(selector=selector, nets=nets, ports=ports, unsupported=unsupported)
                    source, destination = EntityMatch(), peer
                else:
                    source, destination = peer, EntityMatch(ports=ports)
                converted.append(Rule(actions[action], len(converted), number, source=source,
                                      destination=destination))
    return tuple(converted)


def parse_admin_policy(obj: Mapping[str, Any], source: str = "") -> Policy:
    """An AdminNetworkPolicy, BaselineAdminNetworkPolicy or ClusterNetworkPolicy document."""
    kind = obj.get("kind")
    api = obj.get("apiVersion")
    expected = API_V1ALPHA2 if kind == "ClusterNetworkPolicy" else API_V1ALPHA1
    if api != expected:
        raise PolicyInvalid("apiVersion", f"expected {expected} for {kind}, got {api!r}")
    meta = as_mapping(obj.get("metadata"), "metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyInvalid("metadata.name", "is required")
    spec = as_mapping(obj.get("spec"), "spec")
    v1alpha2 = kind == "ClusterNetworkPolicy"
    if kind == "BaselineAdminNetworkPolicy":
        if name != "default":
            raise PolicyInvalid("metadata.name", f"a BaselineAdminNetworkPolicy must be named 'default', got {name!r}")
        tier, order, actions = BASELINE_TIER, None, {"Allow": ALLOW, "Deny": DENY}
    elif kind == "AdminNetworkPolicy":
        tier, actions = ADMIN_TIER, {"Allow": ALLOW, "Deny": DENY, "Pass": PASS}
        order = float(whole_number(spec.get("priority"), "spec.priority", 0, 1000))
    else:
        level = spec.get("tier")
        if level not in ("Admin", "Baseline"):
            raise PolicyInvalid("spec.tier", f"must be Admin or Baseline, got {level!r}")
        tier = KUBE_ADMIN_TIER if level == "Admin" else KUBE_BASELINE_TIER
        actions = {"Accept": ALLOW, "Deny": DENY, "Pass": PASS}
        order = float(whole_number(spec.get("priority"), "spec.priority", 0, 1000))
    ingress = _rules(as_list(spec.get("ingress"), "spec.ingress") or [], "spec.ingress", False, v1alpha2, actions)
    egress = _rules(as_list(spec.get("egress"), "spec.egress") or [], "spec.egress", True, v1alpha2, actions)
    types = frozenset(t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules)
    return Policy(
        kind=str(kind), name=name, namespace=None, tier=tier, order=order, selector=_subject(spec.get("subject")),
        ingress=ingress, egress=egress, types=types, label=policy_value(tier, "", name), source=source,
    )
