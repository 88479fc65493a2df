"""`projectcalico.org/v3` documents → the tiered model: Tier, (Global)NetworkPolicy, their Staged*
kinds, (Global)NetworkSet; and Kubernetes NetworkPolicies as Calico enforces them (`knp.default.<name>`
in the default tier at order 1000, one Allow rule per protocol group and peer).

Every problem raises `PolicyInvalid` naming the field path (selector errors add the column).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.decoders.calico_policies import policy_value
from exporter.netpol.calico.model import (
    ACTIONS,
    DEFAULT_TIER,
    DENY,
    PASS,
    PORT_PROTOCOLS,
    AllOf,
    EntityMatch,
    InNamespace,
    LabelMatcher,
    NamespaceLabels,
    NetworkSet,
    Policy,
    PortSpec,
    Rule,
    Tier,
    protocol_number,
)
from exporter.netpol.calico.selector import Selector, SelectorError, parse
from exporter.netpol.errors import PolicyInvalid
from exporter.netpol.labels import Labels, as_list, as_mapping, validate_label_key, validate_label_value, whole_number
from exporter.netpol.policy import IPNetwork, NetworkPolicy, parse_network, parse_policy, valid_port_name
from exporter.netpol.policy import Rule as KubeRule

KNP_ORDER = 1000.0
KUBERNETES_POLICY = "KubernetesNetworkPolicy"
_POLICY_KEYS = frozenset({
    "tier", "order", "selector", "serviceAccountSelector", "ingress", "egress", "types",
    "performanceHints", "stagedAction",
})
_GLOBAL_KEYS = _POLICY_KEYS | {"namespaceSelector", "doNotTrack", "preDNAT", "applyOnForward"}
_RULE_KEYS = frozenset({
    "action", "protocol", "notProtocol", "icmp", "notICMP", "ipVersion", "source", "destination",
    "http", "metadata",
})
_ENTITY_KEYS = frozenset({
    "nets", "notNets", "selector", "notSelector", "namespaceSelector", "ports", "notPorts",
    "serviceAccounts", "services",
})


def _check_keys(obj: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise PolicyInvalid(path, f"unknown field(s) {unknown}")


def parse_selector(text: Any, path: str) -> Selector:
    if text is not None and not isinstance(text, str):
        raise PolicyInvalid(path, f"a selector must be a string, got {type(text).__name__}")
    try:
        return parse(text or "")
    except SelectorError as exc:
        raise PolicyInvalid(path, f"column {exc.column}: {exc.message} in {text!r}") from None


def _name(meta: Mapping[str, Any], path: str = "metadata.name") -> str:
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyInvalid(path, "is required")
    return name


def _namespace(meta: Mapping[str, Any], default_namespace: str | None) -> str:
    namespace = meta.get("namespace") or default_namespace
    if not isinstance(namespace, str) or not namespace:
        raise PolicyInvalid("metadata.namespace", "is required for a namespaced kind")
    return namespace


def parse_port(obj: Any, path: str) -> PortSpec:
    """`80`, `"8080:8090"` (inclusive range) or a named port."""
    if isinstance(obj, int) and not isinstance(obj, bool):
        port = whole_number(obj, path, 0, 65535)
        return PortSpec(port, port)
    if isinstance(obj, str):
        low_text, colon, high_text = obj.partition(":")
        if colon or obj.isdigit():
            try:
                low, high = int(low_text), int(high_text or low_text)
            except ValueError:
                raise PolicyInvalid(path, f"a port range must be 'first:last', got {obj!r}") from None
            if not 0 <= low <= high <= 65535:
                raise PolicyInvalid(path, f"a port range needs 0 <= first <= last <= 65535, got {obj!r}")
            return PortSpec(low, high)
        if not valid_port_name(obj):
            raise PolicyInvalid(path, f"invalid port name {obj!r} (IANA service name)")
        return PortSpec(name=obj)
    raise PolicyInvalid(path, f"must be a port number, 'first:last' or a port name, got {obj!r}")


def _protocol(obj: Any, path: str) -> int | None:
    if obj is None:
        return None
    number = protocol_number(obj) if isinstance(obj, str | int) else None
    if number is None:
        raise PolicyInvalid(path, f"must be TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or 1-255, got {obj!r}")
    return number


def _icmp(obj: Any, path: str, protocol: int | None) -> tuple[int | None, int | None] | None:
    if obj is None:
        return None
    spec = as_mapping(obj, path)
    _check_keys(spec, frozenset({"type", "code"}), path)
    if protocol not in (1, 58):
        raise PolicyInvalid(path, "needs protocol ICMP or ICMPv6")
    icmp_type = None if spec.get("type") is None else whole_number(spec.get("type"), f"{path}.type", 0, 254)
    code = None if spec.get("code") is None else whole_number(spec.get("code"), f"{path}.code", 0, 255)
    if code is not None and icmp_type is None:
        raise PolicyInvalid(f"{path}.code", "may only be given with a type")
    return (icmp_type, code)


def _ports(obj: Any, path: str) -> tuple[PortSpec, ...]:
    return tuple(parse_port(p, f"{path}[{i}]") for i, p in enumerate(as_list(obj, path) or []))


def _nets(obj: Any, path: str) -> tuple[IPNetwork, ...]:
    return tuple(parse_network(n, f"{path}[{i}]") for i, n in enumerate(as_list(obj, path) or []))


def _entity(obj: Any, path: str, namespace: str | None, protocol: int | None) -> EntityMatch:
    """An EntityRule, with the selectors combined as libcalico-go's getEndpointSelector combines them."""
    entity = as_mapping(obj, path)
    _check_keys(entity, _ENTITY_KEYS, path)
    selector = parse_selector(entity["selector"], f"{path}.selector") if entity.get("selector") else None
    not_selector = (
        parse_selector(entity["notSelector"], f"{path}.notSelector") if entity.get("notSelector") else None
    )
    ns_text = entity.get("namespaceSelector")
    scope: LabelMatcher | None = None
    if ns_text:
        scope = parse_selector(ns_text, f"{path}.namespaceSelector").for_namespaces()
    elif namespace is not None:
        scope = InNamespace(namespace)
    sa_names: frozenset[str] | None = None
    sa_selector: LabelMatcher | None = None
    if entity.get("serviceAccounts") is not None:
        sa = as_mapping(entity["serviceAccounts"], f"{path}.serviceAccounts")
        _check_keys(sa, frozenset({"names", "selector"}), f"{path}.serviceAccounts")
        names = as_list(sa.get("names"), f"{path}.serviceAccounts.names") or []
        if names:
            sa_names = frozenset(str(n) for n in names)
        if sa.get("selector"):
            sa_selector = parse_selector(sa["selector"], f"{path}.serviceAccounts.selector").for_service_accounts()
    effective: LabelMatcher | None = selector
    if scope is not None and (selector or not_selector or ns_text or sa_names is not None or sa_selector):
        effective = AllOf((scope, selector)) if selector is not None else scope
    ports = _ports(entity.get("ports"), f"{path}.ports")
    not_ports = _ports(entity.get("notPorts"), f"{path}.notPorts")
    if (ports or not_ports) and protocol not in PORT_PROTOCOLS:
        raise PolicyInvalid(path, "ports and notPorts need the rule's protocol to be TCP, UDP or SCTP")
    return EntityMatch(
        selector=effective,
        not_selector=not_selector,
        nets=_nets(entity.get("nets"), f"{path}.nets"),
        not_nets=_nets(entity.get("notNets"), f"{path}.notNets"),
        ports=ports,
        not_ports=not_ports,
        service_account_names=sa_names,
        service_account_selector=sa_selector,
        unsupported="service-match" if entity.get("services") is not None else None,
    )


def parse_rule(obj: Any, index: int, path: str, namespace: str | None) -> Rule:
    rule = as_mapping(obj, path)
    _check_keys(rule, _RULE_KEYS, path)
    action = rule.get("action")
    normalized = next((a for a in ACTIONS if isinstance(action, str) and a.lower() == action.lower()), None)
    if normalized is None:
        raise PolicyInvalid(f"{path}.action", f"must be Allow, Deny, Pass or Log, got {action!r}")
    protocol = _protocol(rule.get("protocol"), f"{path}.protocol")
    ip_version = rule.get("ipVersion")
    if ip_version is not None and ip_version not in (4, 6):
        raise PolicyInvalid(f"{path}.ipVersion", f"must be 4 or 6, got {ip_version!r}")
    return Rule(
        action=normalized,
        index=index,
        protocol=protocol,
        not_protocol=_protocol(rule.get("notProtocol"), f"{path}.notProtocol"),
        icmp=_icmp(rule.get("icmp"), f"{path}.icmp", protocol),
        not_icmp=_icmp(rule.get("notICMP"), f"{path}.notICMP", protocol),
        ip_version=ip_version,
        source=_entity(rule.get("source"), f"{path}.source", namespace, protocol),
        destination=_entity(rule.get("destination"), f"{path}.destination", namespace, protocol),
        unsupported="http-match" if rule.get("http") is not None else None,
    )


def _types(spec: Mapping[str, Any], has_ingress: bool, has_egress: bool) -> frozenset[str]:
    """`types`, defaulted as Calico defaults it (api/pkg/defaults/networkpolicy.go)."""
    types = as_list(spec.get("types"), "spec.types") or []
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            raise PolicyInvalid(f"spec.types[{i}]", f"must be Ingress or Egress, got {t!r}")
    if types:
        return frozenset(types)
    if not has_egress:
        return frozenset({"Ingress"})
    return frozenset({"Egress"}) if not has_ingress else frozenset({"Ingress", "Egress"})


def _order(obj: Any) -> float | None:
    if obj is None:
        return None
    if isinstance(obj, bool) or not isinstance(obj, int | float):
        raise PolicyInvalid("spec.order", f"must be a number, got {obj!r}")
    return float(obj)


def parse_tier(obj: Mapping[str, Any]) -> Tier:
    meta = as_mapping(obj.get("metadata"), "metadata")
    spec = as_mapping(obj.get("spec"), "spec")
    _check_keys(spec, frozenset({"order", "defaultAction"}), "spec")
    action = spec.get("defaultAction") or DENY
    if action not in (DENY, PASS):
        raise PolicyInvalid("spec.defaultAction", f"must be Deny or Pass, got {action!r}")
    return Tier(_name(meta), _order(spec.get("order")), action)


def parse_calico_policy(obj: Mapping[str, Any], default_namespace: str | None, source: str = "") -> Policy:
    """A projectcalico.org/v3 (Staged)NetworkPolicy or (Staged)GlobalNetworkPolicy."""
    kind = str(obj.get("kind"))
    is_global = kind.endswith("GlobalNetworkPolicy")
    meta = as_mapping(obj.get("metadata"), "metadata")
    name = _name(meta)
    namespace = None if is_global else _namespace(meta, default_namespace)
    spec = as_mapping(obj.get("spec"), "spec")
    _check_keys(spec, _GLOBAL_KEYS if is_global else _POLICY_KEYS, "spec")
    tier = spec.get("tier") or DEFAULT_TIER
    if not isinstance(tier, str):
        raise PolicyInvalid("spec.tier", f"must be a tier name, got {tier!r}")
    selector: LabelMatcher = parse_selector(spec.get("selector"), "spec.selector")
    if namespace is not None:
        selector = AllOf((InNamespace(namespace), selector))
    elif spec.get("namespaceSelector"):
        namespaces = parse_selector(spec["namespaceSelector"], "spec.namespaceSelector").for_namespaces()
        selector = AllOf((selector, namespaces))
    sa_selector = None
    if spec.get("serviceAccountSelector"):
        sa_text = spec["serviceAccountSelector"]
        sa_selector = parse_selector(sa_text, "spec.serviceAccountSelector").for_service_accounts()
    raw_in = as_list(spec.get("ingress"), "spec.ingress") or []
    raw_out = as_list(spec.get("egress"), "spec.egress") or []
    ingress = tuple(parse_rule(r, i, f"spec.ingress[{i}]", namespace) for i, r in enumerate(raw_in))
    egress = tuple(parse_rule(r, i, f"spec.egress[{i}]", namespace) for i, r in enumerate(raw_out))
    staged_action = _staged_action(kind, spec)
    host_only = next((f for f in ("preDNAT", "doNotTrack") if spec.get(f) is True), None)
    return Policy(
        kind=kind, name=name, namespace=namespace, tier=tier, order=_order(spec.get("order")),
        selector=selector, ingress=ingress, egress=egress, types=_types(spec, bool(raw_in), bool(raw_out)),
        label=policy_value(tier, namespace or "", name), source=source, staged_action=staged_action,
        host_only=host_only, service_account_selector=sa_selector,
    )


def _staged_action(kind: str, spec: Mapping[str, Any]) -> str | None:
    if not kind.startswith("Staged"):
        return None
    action = spec.get("stagedAction") or "Set"
    if action not in ("Set", "Delete"):
        raise PolicyInvalid("spec.stagedAction", f"must be Set or Delete, got {action!r}")
    return str(action)


def _kube_rules(policy: NetworkPolicy, rules: tuple[KubeRule, ...], ingress: bool) -> tuple[Rule, ...]:
    """Allow rules as Calico converts a Kubernetes rule: per protocol group, per peer."""
    converted: list[Rule] = []
    for rule in rules:
        groups: dict[str, list[PortSpec]] = {}
        whole: set[str] = set()  # protocols listed without a port: every port
        for port in rule.ports or ():
            specs = groups.setdefault(port.protocol, [])
            if port.port is None:
                whole.add(port.protocol)
            elif isinstance(port.port, str):
                specs.append(PortSpec(name=port.port))
            else:
                specs.append(PortSpec(port.port, port.end_port or port.port))
        for protocol_name in whole:
            groups[protocol_name] = []
        protocols: list[str | None] = [*sorted(groups)] if groups else [None]
        for protocol in protocols:
            ports = tuple(groups.get(protocol or "", ()))
            for peer in rule.peers or (None,):
                entity = EntityMatch()
                if peer is not None and peer.ip_block is not None:
                    entity = EntityMatch(nets=(peer.ip_block.network,), not_nets=peer.ip_block.excepts)
                elif peer is not None:
                    scope: LabelMatcher = (
                        NamespaceLabels(peer.namespace_selector) if peer.namespace_selector is not None
                        else InNamespace(policy.namespace)
                    )
                    selector = AllOf((scope, peer.pod_selector)) if peer.pod_selector is not None else scope
                    entity = EntityMatch(selector=selector)
                number = protocol_number(protocol) if protocol else None
                destination = EntityMatch(ports=ports) if ingress else _with_ports(entity, ports)
                converted.append(Rule(
                    action="Allow", index=len(converted), protocol=number,
                    source=entity if ingress else EntityMatch(), destination=destination,
                ))
    return tuple(converted)


def _with_ports(entity: EntityMatch, ports: tuple[PortSpec, ...]) -> EntityMatch:
    return EntityMatch(selector=entity.selector, nets=entity.nets, not_nets=entity.not_nets, ports=ports)


def kubernetes_policy(obj: Mapping[str, Any], default_namespace: str | None, source: str = "",
                      staged_action: str | None = None) -> Policy:
    """A networking.k8s.io/v1 NetworkPolicy as Calico enforces it."""
    policy = parse_policy(obj, default_namespace)
    return Policy(
        kind=("Staged" if staged_action else "") + KUBERNETES_POLICY, name=policy.name,
        namespace=policy.namespace, tier=DEFAULT_TIER, order=KNP_ORDER,
        selector=AllOf((InNamespace(policy.namespace), policy.pod_selector)),
        ingress=_kube_rules(policy, policy.ingress, True), egress=_kube_rules(policy, policy.egress, False),
        types=frozenset(t for t, on in (("Ingress", policy.affects_ingress), ("Egress", policy.affects_egress)) if on),
        label=policy_value(DEFAULT_TIER, policy.namespace, policy.name), source=source, staged_action=staged_action,
    )


def parse_staged_kubernetes_policy(obj: Mapping[str, Any], default_namespace: str | None, source: str = "") -> Policy:
    spec = dict(as_mapping(obj.get("spec"), "spec"))
    action = _staged_action("Staged", spec)
    spec.pop("stagedAction", None)
    plain = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": obj.get("metadata"),
             "spec": spec}
    return kubernetes_policy(plain, default_namespace, source, staged_action=action)


def parse_network_set(obj: Mapping[str, Any], default_namespace: str | None) -> NetworkSet:
    meta = as_mapping(obj.get("metadata"), "metadata")
    namespace = None if obj.get("kind") == "GlobalNetworkSet" else _namespace(meta, default_namespace)
    labels = as_mapping(meta.get("labels"), "metadata.labels")
    for key, value in labels.items():
        validate_label_key(key, "metadata.labels")
        validate_label_value(value, f"metadata.labels.{key}")
    spec = as_mapping(obj.get("spec"), "spec")
    return NetworkSet(_name(meta), namespace, Labels(labels), _nets(spec.get("nets"), "spec.nets"))
