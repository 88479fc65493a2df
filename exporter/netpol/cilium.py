"""CiliumNetworkPolicy (CNP) and CiliumClusterwideNetworkPolicy (CCNP): the parsed model and its L3/L4
evaluation (parsing and validation: `exporter.netpol.cilium_parse`).

Semantics (docs/netpol.md cites the sources: Cilium's policy language documentation and its
`pkg/k8s/apis/cilium.io/utils` translation and `pkg/policy` tests):

- A policy holds one rule (`spec`) and/or a list (`specs`); each rule selects endpoints with
  `endpointSelector` (a CNP only in its own namespace; a CCNP cluster-wide) or nodes with
  `nodeSelector` (host policies: not evaluated, they never select pods).
- Selector keys may carry a source prefix (`k8s:`, `any:`); they match the endpoint's labels, which
  include `io.kubernetes.pod.namespace` and `io.cilium.k8s.namespace.labels.<key>` for every label
  of the pod's namespace. `reserved:<entity>` keys match Cilium's reserved identities.
- A peer selector (`fromEndpoints`/`toEndpoints`) without a namespace key means the policy's own
  namespace in a CNP (unless it selects by namespace labels) and any pod in a CCNP.
- A rule isolates (default deny) the selected endpoints in a direction when it has `ingress` or
  `ingressDeny` (`egress`/`egressDeny`) entries, unless `enableDefaultDeny` turns that off.
- An allow entry matches when one of its L3 parts matches the peer (none given: any peer, if it
  has an L4 part; `- {}` allows nothing) and one of its L4 parts (`toPorts`, `icmps`; none: all).
- Deny entries (`ingressDeny`/`egressDeny`) win over every allow.
- What cannot be decided offline (`toFQDNs`, `toServices`, `toGroups`/`fromGroups`, `toNodes`/
  `fromNodes`, `*Requires`, `cidrGroupRef`, `cidrGroupSelector`) makes the entry *undecided*
  when nothing decidable matches; L7 `rules` are evaluated for their L4 part only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from exporter.netpol.labels import Labels, LabelSelector, freeze
from exporter.netpol.policy import INGRESS, IPAddress, IPBlock, port_in

CNP = "CiliumNetworkPolicy"
CCNP = "CiliumClusterwideNetworkPolicy"
CILIUM_KINDS = (CNP, CCNP)
API_VERSION = "cilium.io/v2"

NAMESPACE_KEY = "io.kubernetes.pod.namespace"
NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
# Hubble identity labels (after `k8s:`) that are not pod labels: the namespace, Cilium's bookkeeping.
NOT_POD_LABEL_PREFIXES = ("io.cilium.k8s.", NAMESPACE_KEY)
RESERVED_PREFIX = "reserved:"

ENTITIES = ("all", "world", "world-ipv4", "world-ipv6", "cluster", "host", "remote-node", "kube-apiserver",
            "health", "init", "ingress", "unmanaged")
# Reserved identities that are part of the cluster (entity `cluster`), besides pods.
CLUSTER_ENTITIES = frozenset({"host", "remote-node", "kube-apiserver", "health", "init", "ingress", "unmanaged"})
L4_PROTOCOLS = ("TCP", "UDP", "SCTP")
PORT_PROTOCOLS = (*L4_PROTOCOLS, "ANY")


# -- the endpoint's labels as Cilium sees them -----------------------------------------------
@lru_cache(maxsize=65536)
def identity_labels(namespace: str | None, labels: Labels, namespace_labels: Labels, entity: str | None) -> Labels:
    """Pod labels plus Cilium's namespace labels; `reserved:<entity>` for reserved identities."""
    if namespace is None:
        return Labels({RESERVED_PREFIX + (entity or "world"): ""})
    out = dict(labels)
    out[NAMESPACE_KEY] = namespace
    for key, value in namespace_labels.items():
        out[NAMESPACE_LABELS_PREFIX + key] = value
    return Labels(out)


# -- the parsed objects ----------------------------------------------------------------------
@dataclass(frozen=True)
class PortProtocol:
    """One `toPorts[].ports[]` entry; `port` None = every port; a str is a named port."""

    protocol: str  # TCP | UDP | SCTP | ANY
    port: int | str | None = None
    end_port: int | None = None

    def matches(self, port: int | None, protocol: str, dst_ports: Sequence[Any]) -> bool:
        if protocol not in L4_PROTOCOLS or (self.protocol != "ANY" and self.protocol != protocol):
            return False
        return port_in(self.port, self.end_port, port, protocol, dst_ports)


@dataclass(frozen=True)
class IcmpField:
    protocol: str  # ICMPv4 | ICMPv6
    type: int


@dataclass(frozen=True)
class CiliumEntry:
    """One entry of `ingress`, `egress`, `ingressDeny` or `egressDeny`."""

    direction: str
    deny: bool
    index: int
    endpoints: tuple[LabelSelector, ...] | None  # None: the field is absent
    entities: tuple[str, ...] | None
    cidrs: tuple[IPBlock, ...] | None  # *CIDR and *CIDRSet together
    ports: tuple[PortProtocol, ...] | None  # None: no toPorts (all ports unless icmps is given)
    icmps: tuple[IcmpField, ...] | None
    undecidable: tuple[str, ...] = ()  # fields present that offline evaluation cannot decide
    l7: bool = False  # toPorts carries L7 rules (evaluated for their L4 part)

    @property
    def path(self) -> str:
        return f"{self.direction}{'Deny' if self.deny else ''}[{self.index}]"

    @property
    def has_l3(self) -> bool:
        return self.endpoints is not None or self.entities is not None or self.cidrs is not None

    def l4_matches(self, port: int | None, protocol: str, dst_ports: Sequence[Any]) -> bool:
        if self.ports is None and self.icmps is None:
            return True
        if self.ports is not None and any(p.matches(port, protocol, dst_ports) for p in self.ports):
            return True
        return self.icmps is not None and any(f.protocol == protocol and f.type == port for f in self.icmps)

    def l3_matches(self, other_labels: Labels, other: Any) -> bool | None:
        """True/False when decided; None when only undecidable fields could match (or `*Requires`,
        which narrows every match, is present)."""
        if any(f.endswith("Requires") for f in self.undecidable):
            return None
        if self.endpoints is not None and any(s.matches(other_labels) for s in self.endpoints):
            return True
        if self.entities is not None and any(entity_matches(e, other) for e in self.entities):
            return True
        if (self.cidrs is not None and _is_world(other) and other.ip is not None
                and any(block.contains(other.ip) for block in self.cidrs)):
            return True
        if not self.has_l3 and not self.undecidable:
            # no L3 part: an entry with an L4 part allows every peer; `{}` matches none
            return self.ports is not None or self.icmps is not None
        return None if self.undecidable else False


def _namespace_key(key: str) -> bool:
    return key == NAMESPACE_KEY or key.startswith(NAMESPACE_LABELS_PREFIX)


def _is_world(endpoint: Any) -> bool:
    return endpoint.namespace is None and (endpoint.entity or "world") == "world"


def entity_matches(entity: str, endpoint: Any) -> bool:
    """Whether a `fromEntities`/`toEntities` value covers the endpoint."""
    if entity == "all":
        return True
    world = _is_world(endpoint)
    if entity == "world":
        return world
    if entity in ("world-ipv4", "world-ipv6"):
        version = 4 if entity == "world-ipv4" else 6
        return world and (endpoint.ip is None or endpoint.ip.version == version)
    if entity == "cluster":
        return not world
    if endpoint.namespace is not None:
        return False
    return endpoint.entity == entity or (entity == "host" and endpoint.entity == "kube-apiserver")


@dataclass(frozen=True)
class CiliumRule:
    """One rule (`spec` or an item of `specs`)."""

    path: str  # "spec" or "specs[2]"
    subject: LabelSelector | None  # endpointSelector after scoping; None for a nodeSelector rule
    written_subject: LabelSelector | None  # as written (for specificity and messages)
    entries: tuple[CiliumEntry, ...]
    default_deny_ingress: bool
    default_deny_egress: bool

    def entries_for(self, direction: str, deny: bool) -> tuple[CiliumEntry, ...]:
        return tuple(e for e in self.entries if e.direction == direction and e.deny == deny)

    def isolates(self, direction: str) -> bool:
        return self.default_deny_ingress if direction == INGRESS else self.default_deny_egress

    def has_direction(self, direction: str) -> bool:
        return any(e.direction == direction for e in self.entries)


@dataclass(frozen=True)
class Decision:
    """What one policy says about one direction of one connection at a selected endpoint."""

    isolates: bool
    allows: bool
    maybe_allows: bool
    denies: bool
    maybe_denies: bool


@dataclass(frozen=True)
class CiliumPolicy:
    kind: str  # CNP | CCNP
    namespace: str | None  # None for a CCNP
    name: str
    rules: tuple[CiliumRule, ...]
    annotations: tuple[tuple[str, str], ...] = ()
    notes: tuple[tuple[str, str], ...] = field(default=())  # (path, what is not evaluated and why)

    @property
    def key(self) -> str:
        """The contract's policy value: `ns/name` for a CNP, `name` for a CCNP."""
        return f"{self.namespace}/{self.name}" if self.namespace is not None else self.name

    @property
    def specificity(self) -> int:
        """Requirements on pod labels of the narrowest written endpointSelector (ranks policies for
        attribution like a NetworkPolicy's podSelector: namespace requirements do not count)."""
        return max((sum(1 for req in r.written_subject.requirements if not _namespace_key(req.key))
                    for r in self.rules if r.written_subject is not None), default=0)

    def affects(self, direction: str) -> bool:
        return any(r.subject is not None and r.has_direction(direction) for r in self.rules)

    def selecting_rules(self, pod: Any) -> list[CiliumRule]:
        if pod.namespace is None:
            return []
        labels = identity_labels(pod.namespace, freeze(pod.labels), freeze(pod.namespace_labels), None)
        return [r for r in self.rules if r.subject is not None and r.subject.matches(labels)]

    def isolates(self, pod: Any, direction: str) -> bool:
        return any(r.isolates(direction) for r in self.selecting_rules(pod))

    def decide(self, pod: Any, other: Any, direction: str, port: int | None, protocol: str,
               dst_ports: Sequence[Any]) -> Decision | None:
        """None when no rule of the policy selects `pod` for `direction`."""
        rules = [r for r in self.selecting_rules(pod) if r.has_direction(direction)]
        if not rules:
            return None
        other_labels = identity_labels(other.namespace, freeze(other.labels), freeze(other.namespace_labels),
                                       getattr(other, "entity", None))
        result = {"allows": False, "maybe_allows": False, "denies": False, "maybe_denies": False}
        for rule in rules:
            for deny, yes, maybe in ((False, "allows", "maybe_allows"), (True, "denies", "maybe_denies")):
                for entry in rule.entries_for(direction, deny):
                    if not entry.l4_matches(port, protocol, dst_ports):
                        continue
                    l3 = entry.l3_matches(other_labels, other)
                    if l3:
                        result[yes] = True
                    elif l3 is None:
                        result[maybe] = True
        return Decision(isolates=any(r.isolates(direction) for r in rules), **result)


def parse_ip(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
