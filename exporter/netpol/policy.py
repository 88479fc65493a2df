"""`networking.k8s.io/v1` NetworkPolicy objects: parsing, defaulting and API-server validation.

`parse_policy` takes the object as the API returns it (camelCase dict) and either returns a
`NetworkPolicy` or raises `PolicyInvalid` naming the field the API server would reject.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exporter.netpol.errors import PolicyInvalid
from exporter.netpol.labels import LabelSelector, as_list, as_mapping, parse_selector

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

PROTOCOLS = ("TCP", "UDP", "SCTP")
INGRESS = "ingress"
EGRESS = "egress"
DIRECTIONS = (INGRESS, EGRESS)

_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def valid_port_name(name: str) -> bool:
    """IANA_SVC_NAME: 1-15 lowercase alphanumerics or '-', a letter somewhere, no '--'."""
    return 0 < len(name) <= 15 and bool(_PORT_NAME.match(name)) and "--" not in name and any(c.isalpha() for c in name)


@dataclass(frozen=True)
class IPBlock:
    network: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def contains(self, ip: IPAddress) -> bool:
        if ip.version != self.network.version or ip not in self.network:
            return False
        return not any(ip in e for e in self.excepts)

    def describe(self) -> str:
        text = str(self.network)
        return f"{text} except {','.join(map(str, self.excepts))}" if self.excepts else text


@dataclass(frozen=True)
class PolicyPeer:
    """One entry of `from`/`to`: selectors (both must match when both are set) or an ipBlock."""

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None

    def describe(self) -> str:
        if self.ip_block is not None:
            return f"ipBlock {self.ip_block.describe()}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaces[{self.namespace_selector.describe()}]")
        if self.pod_selector is not None:
            parts.append(f"pods[{self.pod_selector.describe()}]")
        return " ∧ ".join(parts)


def port_in(spec_port: int | str | None, end_port: int | None, port: int | None, protocol: str,
            dst_ports: Sequence[Any]) -> bool:
    """Whether `port` is what a ports entry names: every port (None), a port or range, or a named port
    (resolved on the destination's container ports, which have `name`, `protocol` and `port`)."""
    if spec_port is None:
        return True
    if port is None:
        return False
    if isinstance(spec_port, str):
        return any(cp.name == spec_port and cp.protocol == protocol and cp.port == port for cp in dst_ports)
    return spec_port <= port <= (end_port or spec_port)


@dataclass(frozen=True)
class PolicyPort:
    """One `ports` entry. `port` None = every port of `protocol`; a str is a named port."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None

    def describe(self) -> str:
        if self.port is None:
            return f"{self.protocol}/*"
        if self.end_port is not None:
            return f"{self.protocol}/{self.port}-{self.end_port}"
        return f"{self.protocol}/{self.port}"


@dataclass(frozen=True)
class Rule:
    """An ingress or egress rule. `peers`/`ports` None = missing or empty list = all."""

    direction: str
    index: int
    peers: tuple[PolicyPeer, ...] | None
    ports: tuple[PolicyPort, ...] | None
    # Whether the list was written as an explicit `[]` (for lint messages).
    peers_explicit_empty: bool = False

    @property
    def path(self) -> str:
        return f"spec.{self.direction}[{self.index}]"

    @property
    def peers_field(self) -> str:
        return "from" if self.direction == INGRESS else "to"


@dataclass(frozen=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: LabelSelector
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    affects_ingress: bool
    affects_egress: bool
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """`<namespace>/<name>`, the contract's policy label value."""
        return f"{self.namespace}/{self.name}"

    @property
    def kind(self) -> str:
        return "NetworkPolicy"

    @property
    def specificity(self) -> int:
        return self.pod_selector.specificity

    def affects(self, direction: str) -> bool:
        return self.affects_ingress if direction == INGRESS else self.affects_egress

    def rules(self, direction: str) -> tuple[Rule, ...]:
        return self.ingress if direction == INGRESS else self.egress


def parse_network(text: Any, path: str) -> IPNetwork:
    """A CIDR; host bits set are read as the network (`10.0.0.1/8` → `10.0.0.0/8`)."""
    if not isinstance(text, str) or "/" not in text:
        raise PolicyInvalid(path, f"must be a CIDR like 10.0.0.0/8, got {text!r}")
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise PolicyInvalid(path, f"invalid CIDR {text!r}: {exc}") from None


def _parse_ip_block(obj: Any, path: str) -> IPBlock:
    block = as_mapping(obj, path)
    network = parse_network(block.get("cidr"), f"{path}.cidr")
    excepts = []
    for i, text in enumerate(as_list(block.get("except"), f"{path}.except") or []):
        epath = f"{path}.except[{i}]"
        exc = parse_network(text, epath)
        if exc.version != network.version or not exc.subnet_of(network) or exc.prefixlen <= network.prefixlen:  # type: ignore[arg-type]
            raise PolicyInvalid(epath, f"{text!r} must be a strict subset of cidr {block.get('cidr')!r}")
        excepts.append(exc)
    return IPBlock(network, tuple(excepts))


def _parse_peer(obj: Any, path: str) -> PolicyPeer:
    peer = as_mapping(obj, path)
    unknown = set(peer) - {"podSelector", "namespaceSelector", "ipBlock"}
    if unknown:
        raise PolicyInvalid(path, f"unknown field(s) {sorted(unknown)}")
    present = [k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None]
    if not present:
        raise PolicyInvalid(path, "must specify a peer (podSelector, namespaceSelector or ipBlock)")
    if "ipBlock" in present and len(present) > 1:
        raise PolicyInvalid(path, "may not specify both ipBlock and another peer")
    if "ipBlock" in present:
        return PolicyPeer(ip_block=_parse_ip_block(peer["ipBlock"], f"{path}.ipBlock"))
    pods = parse_selector(peer["podSelector"], f"{path}.podSelector") if "podSelector" in present else None
    nss = (
        parse_selector(peer["namespaceSelector"], f"{path}.namespaceSelector")
        if "namespaceSelector" in present
        else None
    )
    return PolicyPeer(pod_selector=pods, namespace_selector=nss)


def _parse_port(obj: Any, path: str) -> PolicyPort:
    entry = as_mapping(obj, path)
    protocol = entry.get("protocol")
    if protocol is None:
        protocol = "TCP"
    if protocol not in PROTOCOLS:
        raise PolicyInvalid(f"{path}.protocol", f"must be one of TCP, UDP, SCTP, got {protocol!r}")
    port = entry.get("port")
    end_port = entry.get("endPort")
    if isinstance(port, bool) or (port is not None and not isinstance(port, int | str)):
        raise PolicyInvalid(f"{path}.port", f"must be a number or a port name, got {port!r}")
    if isinstance(port, int) and not 1 <= port <= 65535:
        raise PolicyInvalid(f"{path}.port", f"must be between 1 and 65535, got {port}")
    if isinstance(port, str) and not valid_port_name(port):
        raise PolicyInvalid(f"{path}.port", f"invalid port name {port!r} (IANA service name)")
    if end_port is not None:
        if isinstance(end_port, bool) or not isinstance(end_port, int):
            raise PolicyInvalid(f"{path}.endPort", f"must be a number, got {end_port!r}")
        if port is None:
            raise PolicyInvalid(f"{path}.endPort", "may not be specified when port is not specified")
        if isinstance(port, str):
            raise PolicyInvalid(f"{path}.endPort", "may not be specified when port is a named port")
        if end_port < port or end_port > 65535:
            raise PolicyInvalid(f"{path}.endPort", f"must be between port ({port}) and 65535, got {end_port}")
    return PolicyPort(protocol=protocol, port=port, end_port=end_port)


def _parse_rule(obj: Any, direction: str, index: int, path: str) -> Rule:
    rule = as_mapping(obj, path)
    peers_key = "from" if direction == INGRESS else "to"
    unknown = set(rule) - {peers_key, "ports"}
    if unknown:
        raise PolicyInvalid(path, f"unknown field(s) {sorted(unknown)} in an {direction} rule")
    raw_peers = as_list(rule.get(peers_key), f"{path}.{peers_key}")
    raw_ports = as_list(rule.get("ports"), f"{path}.ports")
    peers = tuple(_parse_peer(p, f"{path}.{peers_key}[{i}]") for i, p in enumerate(raw_peers or []))
    ports = tuple(_parse_port(p, f"{path}.ports[{i}]") for i, p in enumerate(raw_ports or []))
    return Rule(
        direction=direction,
        index=index,
        peers=peers or None,
        ports=ports or None,
        peers_explicit_empty=raw_peers is not None and not raw_peers,
    )


def parse_policy(obj: Any, default_namespace: str | None = None) -> NetworkPolicy:
    """Parse and validate one NetworkPolicy object, applying the API server's defaulting."""
    top = as_mapping(obj, "")
    kind = top.get("kind", "NetworkPolicy")
    if kind != "NetworkPolicy":
        raise PolicyInvalid("kind", f"expected NetworkPolicy, got {kind!r}")
    api = top.get("apiVersion", "networking.k8s.io/v1")
    if api != "networking.k8s.io/v1":
        raise PolicyInvalid("apiVersion", f"expected networking.k8s.io/v1, got {api!r}")
    meta = as_mapping(top.get("metadata"), "metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name or len(name) > 253:
        raise PolicyInvalid("metadata.name", "is required")
    namespace = meta.get("namespace") or default_namespace
    if not isinstance(namespace, str) or not _DNS_LABEL.match(namespace) or len(namespace) > 63:
        raise PolicyInvalid("metadata.namespace", f"is required and must be a DNS label, got {namespace!r}")
    annotations = as_mapping(meta.get("annotations"), "metadata.annotations")
    spec = as_mapping(top.get("spec"), "spec")
    if "podSelector" not in spec:
        raise PolicyInvalid("spec.podSelector", "is required (use {} to select every pod)")
    pod_selector = parse_selector(spec.get("podSelector"), "spec.podSelector")
    raw_ingress = as_list(spec.get("ingress"), "spec.ingress") or []
    raw_egress = as_list(spec.get("egress"), "spec.egress") or []
    ingress = tuple(_parse_rule(r, INGRESS, i, f"spec.ingress[{i}]") for i, r in enumerate(raw_ingress))
    egress = tuple(_parse_rule(r, EGRESS, i, f"spec.egress[{i}]") for i, r in enumerate(raw_egress))
    types = as_list(spec.get("policyTypes"), "spec.policyTypes") or []
    for i, t in enumerate(types):
        if t not in ("Ingress", "Egress"):
            raise PolicyInvalid(f"spec.policyTypes[{i}]", f"must be Ingress or Egress, got {t!r}")
    if len(types) > 2:
        raise PolicyInvalid("spec.policyTypes", "may hold at most Ingress and Egress")
    if not types:  # the API server's defaulting
        types = ["Ingress", "Egress"] if raw_egress else ["Ingress"]
    return NetworkPolicy(
        namespace=namespace,
        name=name,
        pod_selector=pod_selector,
        ingress=ingress,
        egress=egress,
        affects_ingress="Ingress" in types,
        affects_egress="Egress" in types,
        annotations=tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
    )
