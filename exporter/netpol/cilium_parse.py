"""Parsing and validation of CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy objects.

`parse_cilium_policy` takes the object as the API returns it (or a file holds it) and returns an
`exporter.netpol.cilium.CiliumPolicy`, or raises `PolicyInvalid` naming the field. Cilium's namespace
scoping of selectors (`pkg/k8s/apis/cilium.io/utils`) happens here; docs/netpol.md cites the sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.netpol.cilium import (
    API_VERSION,
    CILIUM_KINDS,
    CNP,
    ENTITIES,
    NAMESPACE_KEY,
    NAMESPACE_LABELS_PREFIX,
    PORT_PROTOCOLS,
    RESERVED_PREFIX,
    CiliumEntry,
    CiliumPolicy,
    CiliumRule,
    IcmpField,
    PortProtocol,
)
from exporter.netpol.errors import PolicyInvalid
from exporter.netpol.labels import LabelSelector, Requirement, as_list, as_mapping, parse_selector
from exporter.netpol.policy import EGRESS, INGRESS, IPBlock, parse_network, valid_port_name

_SOURCE_PREFIXES = ("k8s:", "any:")
ICMP_FAMILIES = {"IPv4": "ICMPv4", "IPv6": "ICMPv6"}
# Cilium's ICMP type names (pkg/policy/api/icmp.go), per family.
ICMP_TYPES = {
    "ICMPv4": {"EchoReply": 0, "DestinationUnreachable": 3, "Redirect": 5, "Echo": 8, "EchoRequest": 8,
               "RouterAdvertisement": 9, "RouterSelection": 10, "TimeExceeded": 11, "ParameterProblem": 12,
               "Timestamp": 13, "TimestampReply": 14, "Photuris": 40, "ExtendedEchoRequest": 42,
               "ExtendedEchoReply": 43},
    "ICMPv6": {"DestinationUnreachable": 1, "PacketTooBig": 2, "TimeExceeded": 3, "ParameterProblem": 4,
               "EchoRequest": 128, "EchoReply": 129, "MulticastListenerQuery": 130, "MulticastListenerReport": 131,
               "MulticastListenerDone": 132, "RouterSolicitation": 133, "RouterAdvertisement": 134,
               "NeighborSolicitation": 135, "NeighborAdvertisement": 136, "RedirectMessage": 137,
               "RouterRenumbering": 138, "ICMPNodeInformationQuery": 139, "ICMPNodeInformationResponse": 140,
               "InverseNeighborDiscoverySolicitation": 141, "InverseNeighborDiscoveryAdvertisement": 142,
               "HomeAgentAddressDiscoveryRequest": 144, "HomeAgentAddressDiscoveryReply": 145,
               "MobilePrefixSolicitation": 146, "MobilePrefixAdvertisement": 147,
               "DuplicateAddressRequestCodeSuffix": 157,
               "DuplicateAddressConfirmationCodeSuffix": 158, "ExtendedEchoRequest": 160, "ExtendedEchoReply": 161},
}

# Fields an offline evaluation cannot decide: (field, why).
_UNDECIDABLE = {
    "toFQDNs": "needs the DNS answers the pods saw",
    "toServices": "needs the cluster's Services and Endpoints",
    "toGroups": "needs the cloud provider's groups",
    "fromGroups": "needs the cloud provider's groups",
    "toNodes": "needs the cluster's Nodes",
    "fromNodes": "needs the cluster's Nodes",
    "toRequires": "requirements (deprecated) are not modelled",
    "fromRequires": "requirements (deprecated) are not modelled",
}
_ALLOW_FIELDS = {
    INGRESS: {"fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet", "toPorts", "icmps", "authentication",
              "fromRequires", "fromGroups", "fromNodes"},
    EGRESS: {"toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toPorts", "icmps", "authentication", "toFQDNs",
             "toServices", "toGroups", "toNodes", "toRequires"},
}
_DENY_FIELDS = {
    INGRESS: {"fromEndpoints", "fromEntities", "fromCIDR", "fromCIDRSet", "toPorts", "icmps", "fromRequires",
              "fromGroups", "fromNodes"},
    EGRESS: {"toEndpoints", "toEntities", "toCIDR", "toCIDRSet", "toPorts", "icmps", "toServices", "toGroups",
             "toNodes", "toRequires"},
}
_RULE_FIELDS = {"endpointSelector", "nodeSelector", "ingress", "egress", "ingressDeny", "egressDeny", "labels",
                "description", "enableDefaultDeny", "log"}


def _normalize_key(key: Any, path: str) -> str:
    if not isinstance(key, str) or not key:
        raise PolicyInvalid(path, f"label key must be a non-empty string, got {key!r}")
    for prefix in _SOURCE_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    if not key or key == RESERVED_PREFIX:
        raise PolicyInvalid(path, "label key is empty after its source prefix")
    return key


def _label_value(value: Any, path: str) -> str:
    """Any string (Cilium labels are not held to Kubernetes' syntax); null reads as "" (as Go's JSON does)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PolicyInvalid(path, f"label value must be a string, got {value!r}")
    return value


def parse_endpoint_selector(obj: Any, path: str) -> LabelSelector:
    """A Cilium EndpointSelector: a LabelSelector whose keys may carry a source prefix."""
    return parse_selector(obj, path, _normalize_key, _label_value, "an endpoint selector")


def _has_key(selector: LabelSelector, key: str) -> bool:
    return any(r.key == key for r in selector.requirements)


def _has_prefix(selector: LabelSelector, prefix: str) -> bool:
    return any(r.key.startswith(prefix) for r in selector.requirements)


def _with(selector: LabelSelector, extra: Requirement) -> LabelSelector:
    return LabelSelector((*selector.requirements, extra))


def scope_peer_selector(selector: LabelSelector, namespace: str | None, subject: LabelSelector) -> LabelSelector:
    """Cilium's namespace scoping of a `fromEndpoints`/`toEndpoints` selector.

    Reserved-identity selectors and selectors naming a namespace stay as written. Otherwise a CNP
    adds its own namespace (unless the selector matches namespace labels) and a CCNP requires a
    namespace (any pod) unless its subject selects initializing endpoints (`reserved:init`).
    """
    if _has_prefix(selector, RESERVED_PREFIX) or _has_key(selector, NAMESPACE_KEY):
        return selector
    if namespace is None:
        if _has_key(subject, RESERVED_PREFIX + "init"):
            return selector
        return _with(selector, Requirement(NAMESPACE_KEY, "Exists"))
    if _has_prefix(selector, NAMESPACE_LABELS_PREFIX):
        return selector
    return _with(selector, Requirement(NAMESPACE_KEY, "In", frozenset([namespace])))


def _cidr_blocks(entry: Mapping[str, Any], prefix: str, path: str) -> tuple[list[IPBlock] | None, list[str]]:
    blocks: list[IPBlock] | None = None
    undecidable: list[str] = []
    plain = as_list(entry.get(f"{prefix}CIDR"), f"{path}.{prefix}CIDR")
    if plain is not None:
        blocks = [IPBlock(parse_network(text, f"{path}.{prefix}CIDR[{i}]")) for i, text in enumerate(plain)]
    sets = as_list(entry.get(f"{prefix}CIDRSet"), f"{path}.{prefix}CIDRSet")
    if sets is not None:
        blocks = blocks or []
        for i, raw in enumerate(sets):
            spath = f"{path}.{prefix}CIDRSet[{i}]"
            item = as_mapping(raw, spath)
            if item.get("cidrGroupRef") is not None or item.get("cidrGroupSelector") is not None:
                undecidable.append(f"{prefix}CIDRSet[{i}].cidrGroup")
                continue
            network = parse_network(item.get("cidr"), f"{spath}.cidr")
            excepts = []
            for j, text in enumerate(as_list(item.get("except"), f"{spath}.except") or []):
                exc = parse_network(text, f"{spath}.except[{j}]")
                if exc.version != network.version or not exc.subnet_of(network):  # type: ignore[arg-type]
                    raise PolicyInvalid(f"{spath}.except[{j}]", f"{text!r} is not inside cidr {item.get('cidr')!r}")
                excepts.append(exc)
            blocks.append(IPBlock(network, tuple(excepts)))
    return blocks, undecidable


def _parse_port(raw: Any, path: str) -> PortProtocol:
    entry = as_mapping(raw, path)
    protocol = str(entry.get("protocol") or "ANY").upper()
    if protocol not in PORT_PROTOCOLS:
        raise PolicyInvalid(f"{path}.protocol", f"must be one of {', '.join(PORT_PROTOCOLS)}, got {protocol!r}")
    port_raw = entry.get("port")
    end_port = entry.get("endPort")
    port: int | str | None
    if port_raw is None or port_raw in ("", "0", 0):
        port = None
    elif (isinstance(port_raw, int) and not isinstance(port_raw, bool)) or (
            isinstance(port_raw, str) and port_raw.isdigit()):
        port = int(port_raw)
        if not 1 <= port <= 65535:
            raise PolicyInvalid(f"{path}.port", f"must be between 1 and 65535, got {port_raw!r}")
    elif isinstance(port_raw, str) and valid_port_name(port_raw.lower()):
        port = port_raw.lower()
    else:
        raise PolicyInvalid(f"{path}.port", f"must be a port number or a port name, got {port_raw!r}")
    if end_port is not None and end_port != 0:
        if isinstance(end_port, bool) or not isinstance(end_port, int) or not 1 <= end_port <= 65535:
            raise PolicyInvalid(f"{path}.endPort", f"must be a port number, got {end_port!r}")
        if not isinstance(port, int) or end_port < port:
            raise PolicyInvalid(f"{path}.endPort", "needs a numeric port not above it")
        return PortProtocol(protocol, port, end_port)
    return PortProtocol(protocol, port)


def _parse_icmps(raw: Any, path: str) -> tuple[IcmpField, ...] | None:
    items = as_list(raw, path)
    if items is None:
        return None
    fields: list[IcmpField] = []
    for i, item in enumerate(items):
        ipath = f"{path}[{i}]"
        for j, f in enumerate(as_list(as_mapping(item, ipath).get("fields"), f"{ipath}.fields") or []):
            fpath = f"{ipath}.fields[{j}]"
            fmap = as_mapping(f, fpath)
            family = fmap.get("family") or "IPv4"
            protocol = ICMP_FAMILIES.get(family) if isinstance(family, str) else None
            if protocol is None:
                raise PolicyInvalid(f"{fpath}.family", f"must be IPv4 or IPv6, got {family!r}")
            value = fmap.get("type")
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
                number = value
            elif isinstance(value, str) and value.isdigit() and int(value) <= 255:
                number = int(value)
            elif isinstance(value, str) and value in ICMP_TYPES[protocol]:
                number = ICMP_TYPES[protocol][value]
            else:
                raise PolicyInvalid(f"{fpath}.type", f"unknown {family} ICMP type {value!r}")
            fields.append(IcmpField(protocol, number))
    return tuple(fields)


def _parse_entry(raw: Any, direction: str, deny: bool, index: int, path: str, namespace: str | None,
                 subject: LabelSelector | None) -> CiliumEntry:
    entry = as_mapping(raw, path)
    allowed = (_DENY_FIELDS if deny else _ALLOW_FIELDS)[direction]
    unknown = set(entry) - allowed
    if unknown:
        raise PolicyInvalid(path, f"unknown field(s) {sorted(unknown)} in an {direction}{'Deny' if deny else ''} rule")
    peer = "from" if direction == INGRESS else "to"
    endpoints = None
    raw_eps = as_list(entry.get(f"{peer}Endpoints"), f"{path}.{peer}Endpoints")
    if raw_eps is not None:
        endpoints = tuple(
            scope_peer_selector(parse_endpoint_selector(s, f"{path}.{peer}Endpoints[{i}]"), namespace,
                                subject or LabelSelector())
            for i, s in enumerate(raw_eps))
    entities = None
    raw_entities = as_list(entry.get(f"{peer}Entities"), f"{path}.{peer}Entities")
    if raw_entities is not None:
        for i, e in enumerate(raw_entities):
            if e not in ENTITIES:
                raise PolicyInvalid(f"{path}.{peer}Entities[{i}]", f"unknown entity {e!r} ({', '.join(ENTITIES)})")
        entities = tuple(raw_entities)
    cidrs, undecidable = _cidr_blocks(entry, peer, path)
    undecidable += [f for f in sorted(_UNDECIDABLE) if entry.get(f) is not None]
    ports: list[PortProtocol] | None = None
    l7 = False
    raw_ports = as_list(entry.get("toPorts"), f"{path}.toPorts")
    if raw_ports is not None:
        ports = []
        for i, pr in enumerate(raw_ports):
            ppath = f"{path}.toPorts[{i}]"
            port_rule = as_mapping(pr, ppath)
            if any(port_rule.get(k) for k in ("rules", "serverNames", "listener", "terminatingTLS",
                                                "originatingTLS")):
                l7 = True
            listed = as_list(port_rule.get("ports"), f"{ppath}.ports")
            if not listed:
                ports.append(PortProtocol("ANY"))
                continue
            ports.extend(_parse_port(p, f"{ppath}.ports[{j}]") for j, p in enumerate(listed))
    icmps = _parse_icmps(entry.get("icmps"), f"{path}.icmps")
    return CiliumEntry(direction, deny, index, endpoints, entities, tuple(cidrs) if cidrs is not None else None,
                       tuple(ports) if ports is not None else None, icmps, tuple(undecidable), l7)


def _parse_rule(raw: Any, path: str, namespace: str | None) -> tuple[CiliumRule, list[tuple[str, str]]]:
    spec = as_mapping(raw, path)
    unknown = set(spec) - _RULE_FIELDS
    if unknown:
        raise PolicyInvalid(path, f"unknown field(s) {sorted(unknown)}")
    notes: list[tuple[str, str]] = []
    has_eps, has_nodes = spec.get("endpointSelector") is not None, spec.get("nodeSelector") is not None
    if has_eps == has_nodes:
        raise PolicyInvalid(path, "needs exactly one of endpointSelector and nodeSelector")
    subject = written = None
    if has_eps:
        written = parse_endpoint_selector(spec["endpointSelector"], f"{path}.endpointSelector")
        subject = written
        if namespace is not None:  # a CNP selects in its own namespace only: a namespace match is replaced
            kept = tuple(r for r in written.requirements
                         if not (r.key == NAMESPACE_KEY and r.operator == "In" and len(r.values) == 1))
            subject = LabelSelector((*kept, Requirement(NAMESPACE_KEY, "In", frozenset([namespace]))))
            written = LabelSelector(kept)
    else:
        if namespace is not None:
            raise PolicyInvalid(f"{path}.nodeSelector", "is only allowed in a CiliumClusterwideNetworkPolicy")
        notes.append((f"{path}.nodeSelector", "host policy (nodeSelector): selects nodes, not evaluated"))
    entries: list[CiliumEntry] = []
    for key, direction, deny in (("ingress", INGRESS, False), ("egress", EGRESS, False),
                                 ("ingressDeny", INGRESS, True), ("egressDeny", EGRESS, True)):
        for i, item in enumerate(as_list(spec.get(key), f"{path}.{key}") or []):
            entry = _parse_entry(item, direction, deny, i, f"{path}.{key}[{i}]", namespace, written)
            entries.append(entry)
            for f in entry.undecidable:
                why = _UNDECIDABLE.get(f.split("[")[0], "needs the cluster's CiliumCIDRGroups")
                notes.append((f"{path}.{key}[{i}].{f}", f"not evaluated offline: {why}"))
            if entry.l7:
                notes.append((f"{path}.{key}[{i}].toPorts", "L7 rules: only their L4 part (ports) is evaluated"))
    dd = as_mapping(spec.get("enableDefaultDeny"), f"{path}.enableDefaultDeny")
    flags = {}
    for direction, key in ((INGRESS, "ingress"), (EGRESS, "egress")):
        value = dd.get(key)
        if value is not None and not isinstance(value, bool):
            raise PolicyInvalid(f"{path}.enableDefaultDeny.{key}", f"must be true or false, got {value!r}")
        present = any(e.direction == direction for e in entries)
        flags[direction] = present and value is not False
    rule = CiliumRule(path, subject, written, tuple(entries), flags[INGRESS], flags[EGRESS])
    return rule, notes


def parse_cilium_policy(obj: Any, default_namespace: str | None = None) -> CiliumPolicy:
    """Parse and validate a CNP or CCNP object (as the API returns it)."""
    top = as_mapping(obj, "")
    kind = top.get("kind")
    if kind not in CILIUM_KINDS:
        raise PolicyInvalid("kind", f"expected {' or '.join(CILIUM_KINDS)}, got {kind!r}")
    api = top.get("apiVersion", API_VERSION)
    if api != API_VERSION:
        raise PolicyInvalid("apiVersion", f"expected {API_VERSION}, got {api!r}")
    meta = as_mapping(top.get("metadata"), "metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name or len(name) > 253:
        raise PolicyInvalid("metadata.name", "is required")
    namespace: str | None = None
    if kind == CNP:
        namespace = meta.get("namespace") or default_namespace
        if not isinstance(namespace, str) or not namespace:
            raise PolicyInvalid("metadata.namespace", "is required for a CiliumNetworkPolicy")
    annotations = as_mapping(meta.get("annotations"), "metadata.annotations")
    specs: list[tuple[str, Any]] = []
    if top.get("spec") is not None:
        specs.append(("spec", top["spec"]))
    for i, item in enumerate(as_list(top.get("specs"), "specs") or []):
        specs.append((f"specs[{i}]", item))
    if not specs:
        raise PolicyInvalid("spec", "a Cilium policy needs spec or specs")
    rules: list[CiliumRule] = []
    notes: list[tuple[str, str]] = []
    for path, raw in specs:
        rule, rule_notes = _parse_rule(raw, path, namespace)
        rules.append(rule)
        notes.extend(rule_notes)
    return CiliumPolicy(kind, namespace, name, tuple(rules),
                        tuple(sorted((str(k), str(v)) for k, v in annotations.items())), tuple(notes))
