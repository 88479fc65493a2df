"""The tiered policy model Calico enforces, which AdminNetworkPolicies and Kubernetes NetworkPolicies
are converted into: tiers of ordered policies whose ordered rules say Allow, Deny, Pass or Log.

Peers reuse the NetworkPolicy engine's `Labels` and `ContainerPort`. Matching is three-valued: a
component that cannot be decided offline returns `Unknown(reason)` instead of a guess.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Protocol

from exporter.netpol.calico.selector import NAMESPACE_LABEL, NAMESPACE_PREFIX, SERVICE_ACCOUNT_PREFIX
from exporter.netpol.evaluator import ContainerPort, Endpoint
from exporter.netpol.labels import Labels
from exporter.netpol.policy import IPAddress, IPNetwork

INGRESS = "ingress"
EGRESS = "egress"
ALLOW, DENY, PASS, LOG = "Allow", "Deny", "Pass", "Log"
ACTIONS = (ALLOW, DENY, PASS, LOG)

SERVICE_ACCOUNT_LABEL = "projectcalico.org/serviceaccount"
ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
NAMESPACE_NAME_LABEL = "projectcalico.org/name"
K8S_NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# IANA protocol numbers of the names Calico accepts (numorstring.Protocol).
PROTOCOL_NUMBERS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPV4": 1, "ICMPV6": 58, "SCTP": 132, "UDPLITE": 136}
PORT_PROTOCOLS = frozenset({6, 17, 132})  # protocols with ports (Calico: TCP, UDP, SCTP)


class LabelMatcher(Protocol):
    def matches(self, labels: Mapping[str, str]) -> bool: ...


@dataclass(frozen=True)
class AllOf:
    """Every matcher matches (Calico's `(a) && (b)` of the selectors it combines)."""

    parts: tuple[LabelMatcher, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(part.matches(labels) for part in self.parts)


@dataclass(frozen=True)
class InNamespace:
    """`projectcalico.org/namespace == '<ns>'`: the scope of a namespaced policy's selectors."""

    namespace: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return labels.get(NAMESPACE_LABEL) == self.namespace


@dataclass(frozen=True)
class NamespaceLabels:
    """A Kubernetes namespaceSelector: matched on the endpoint's `pcns.` labels; namespaced endpoints only."""

    selector: LabelMatcher

    def matches(self, labels: Mapping[str, str]) -> bool:
        if NAMESPACE_LABEL not in labels:
            return False
        cut = len(NAMESPACE_PREFIX)
        return self.selector.matches({k[cut:]: v for k, v in labels.items() if k.startswith(NAMESPACE_PREFIX)})


@dataclass(frozen=True)
class HostsOnly:
    """An AdminNetworkPolicy `nodes` peer: a node selector, never matching a (namespaced) pod."""

    selector: LabelMatcher

    def matches(self, labels: Mapping[str, str]) -> bool:
        return NAMESPACE_LABEL not in labels and self.selector.matches(labels)


@dataclass(frozen=True)
class Unknown:
    """A match that cannot be decided offline; `reason` is a short code (see docs/calico-policies.md)."""

    reason: str


Match = bool | Unknown


def all_of(*parts: Match) -> Match:
    """Three-valued AND: False wins over Unknown, Unknown over True."""
    unknown: Unknown | None = None
    for part in parts:
        if part is False:
            return False
        if isinstance(part, Unknown) and unknown is None:
            unknown = part
    return unknown if unknown is not None else True


def protocol_number(value: str | int) -> int | None:
    """`TCP`, `icmpv6`, `6`, 17 → the IANA number; None when not a protocol."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 255 else None
    text = value.strip()
    if text.isdigit():
        number = int(text)
        return number if number <= 255 else None
    return PROTOCOL_NUMBERS.get(text.upper())


@dataclass(frozen=True)
class Peer:
    """One end of a flow: a pod, a host (node), or an address outside the cluster.

    `ports` are the pod's container ports (named ports resolve against them; empty = not known).
    `service_account` None = not known (rules on service accounts are then not evaluated).
    `labels` of a host are its HostEndpoint/node labels, None when not known."""

    kind: str  # "pod" | "host" | "external"
    key: str
    namespace: str | None = None
    labels: Labels | None = field(default_factory=Labels)
    namespace_labels: Labels = field(default_factory=Labels)
    ip: IPAddress | None = None
    ports: tuple[ContainerPort, ...] = ()
    service_account: str | None = None
    service_account_labels: Labels = field(default_factory=Labels)

    @classmethod
    def pod(
        cls,
        namespace: str,
        name: str,
        labels: Mapping[str, str] | None = None,
        namespace_labels: Mapping[str, str] | None = None,
        ip: str | None = None,
        ports: tuple[ContainerPort, ...] = (),
        service_account: str | None = None,
        service_account_labels: Mapping[str, str] | None = None,
    ) -> Peer:
        return cls(
            "pod",
            f"{namespace}/{name}",
            namespace,
            Labels(labels),
            Labels(namespace_labels),
            ipaddress.ip_address(ip) if ip else None,
            ports,
            service_account,
            Labels(service_account_labels),
        )

    @classmethod
    def external(cls, ip: str | None) -> Peer:
        return cls("external", ip or "unknown", ip=ipaddress.ip_address(ip) if ip else None)

    @classmethod
    def host(cls, name: str, ip: str | None = None, labels: Mapping[str, str] | None = None) -> Peer:
        return cls("host", name, labels=Labels(labels) if labels is not None else None,
                   ip=ipaddress.ip_address(ip) if ip else None)

    @classmethod
    def from_endpoint(cls, endpoint: Endpoint, service_account: str | None = None) -> Peer:
        """A peer from the NetworkPolicy engine's `Endpoint` (pod, or address outside the cluster)."""
        if endpoint.namespace is None:
            return cls("external", endpoint.key, ip=endpoint.ip)
        return cls("pod", endpoint.key, endpoint.namespace, endpoint.labels, endpoint.namespace_labels,
                   endpoint.ip, endpoint.ports, service_account)

    def calico_labels(self) -> Mapping[str, str] | None:
        """The labels Calico's selectors see on this endpoint: its own, its namespace's (`pcns.`), its
        service account's (`pcsa.`) and the implicit `projectcalico.org/*` ones. None: not known."""
        return self._calico_labels

    @cached_property
    def _calico_labels(self) -> Mapping[str, str] | None:
        if self.kind != "pod" or self.labels is None:
            return self.labels
        merged = dict(self.labels)
        merged[NAMESPACE_LABEL] = self.namespace or ""
        merged[ORCHESTRATOR_LABEL] = "k8s"
        for key, value in namespace_view(self.namespace or "", self.namespace_labels).items():
            merged[NAMESPACE_PREFIX + key] = value
        if self.service_account is not None:
            merged[SERVICE_ACCOUNT_LABEL] = self.service_account
            for key, value in self.service_account_labels.items():
                merged[SERVICE_ACCOUNT_PREFIX + key] = value
        return merged


def namespace_view(namespace: str, labels: Mapping[str, str]) -> dict[str, str]:
    """A namespace's labels with the ones Kubernetes and Calico always add."""
    view = dict(labels)
    view.setdefault(K8S_NAMESPACE_NAME_LABEL, namespace)
    view.setdefault(NAMESPACE_NAME_LABEL, namespace)
    return view


@dataclass(frozen=True)
class NetworkSet:
    """A (Global)NetworkSet: labelled CIDRs that rule selectors match for addresses in them."""

    name: str
    namespace: str | None
    labels: Labels
    nets: tuple[IPNetwork, ...]

    def calico_labels(self) -> Mapping[str, str]:
        merged = dict(self.labels)
        if self.namespace is not None:
            merged[NAMESPACE_LABEL] = self.namespace
            for key, value in namespace_view(self.namespace, {}).items():
                merged[NAMESPACE_PREFIX + key] = value
        return merged

    def contains(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self.nets)


@dataclass(frozen=True)
class PortSpec:
    """A port, an inclusive range `a:b`, or a named port (resolved on the endpoint)."""

    low: int = 0
    high: int = 0
    name: str | None = None


@dataclass(frozen=True)
class EntityMatch:
    """A rule's `source` or `destination`. `selector` is the effective endpoint selector (namespace
    scope, service accounts and `selector` combined, as Calico combines them); None = no selector."""

    selector: LabelMatcher | None = None
    not_selector: LabelMatcher | None = None
    nets: tuple[IPNetwork, ...] = ()
    not_nets: tuple[IPNetwork, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    not_ports: tuple[PortSpec, ...] = ()
    service_account_names: frozenset[str] | None = None
    service_account_selector: LabelMatcher | None = None
    unsupported: str | None = None  # reason code of a field offline evaluation cannot decide


@dataclass(frozen=True)
class Rule:
    action: str
    index: int  # position in the policy's ingress/egress list (as Calico numbers rules)
    protocol: int | None = None
    not_protocol: int | None = None
    icmp: tuple[int | None, int | None] | None = None  # (type, code)
    not_icmp: tuple[int | None, int | None] | None = None
    ip_version: int | None = None
    source: EntityMatch = field(default_factory=EntityMatch)
    destination: EntityMatch = field(default_factory=EntityMatch)
    unsupported: str | None = None


@dataclass(frozen=True)
class Policy:
    """A policy in a tier. `label` is the contract's policy label value (as Calico's flows name it)."""

    kind: str
    name: str
    namespace: str | None
    tier: str
    order: float | None
    selector: LabelMatcher
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]
    types: frozenset[str]
    label: str
    source: str = ""  # where it was read from (file, document)
    staged_action: str | None = None  # Set | Delete for Staged* kinds
    host_only: str | None = None  # preDNAT / doNotTrack: applies to host endpoints only
    service_account_selector: LabelMatcher | None = None  # matched on `pcsa.` labels; needs the SA

    @property
    def sort_key(self) -> tuple[bool, float, str]:
        """Felix's order within a tier (calc/policy_sorter.go PolKVLess): by `order` (unset = last),
        ties by "name/namespace/kind"."""
        return (self.order is None, self.order or 0.0, f"{self.name}/{self.namespace or ''}/{self.kind}")

    @property
    def identity(self) -> tuple[str, str]:
        """What a staged policy replaces: the enforced policy of the same kind and label (namespace,
        tier and name; a `tier.` prefix on the name or not)."""
        return (self.kind.removeprefix("Staged"), self.label)

    def rules(self, direction: str) -> tuple[Rule, ...]:
        return self.ingress if direction == INGRESS else self.egress

    @property
    def info_kind(self) -> str:
        """The `kind` label of `networkpolicy_info` (issue 17): `NetworkPolicy` is Kubernetes',
        Calico's namespaced one is `CalicoNetworkPolicy`; staged kinds keep their API kind."""
        return {"KubernetesNetworkPolicy": "NetworkPolicy", "NetworkPolicy": "CalicoNetworkPolicy"}.get(
            self.kind, self.kind)


@dataclass(frozen=True)
class Tier:
    name: str
    order: float | None
    default_action: str = DENY  # Deny | Pass
    defined: bool = True  # False: policies name a tier no Tier document defines

    @property
    def sort_key(self) -> tuple[bool, float, str]:
        return (self.order is None, self.order or 0.0, self.name)


# The tiers Calico creates itself (api/pkg/apis/projectcalico/v3/tier.go, libcalico-go clientv3):
# order and defaultAction, used unless a Tier document in the input says otherwise.
DEFAULT_TIER = "default"
ADMIN_TIER = "adminnetworkpolicy"  # AdminNetworkPolicy (Calico 3.29-3.31)
BASELINE_TIER = "baselineadminnetworkpolicy"  # BaselineAdminNetworkPolicy (Calico 3.29-3.31)
KUBE_ADMIN_TIER = "kube-admin"  # ClusterNetworkPolicy tier Admin
KUBE_BASELINE_TIER = "kube-baseline"  # ClusterNetworkPolicy tier Baseline
BUILTIN_TIERS = {
    ADMIN_TIER: Tier(ADMIN_TIER, 1_000.0, PASS),
    KUBE_ADMIN_TIER: Tier(KUBE_ADMIN_TIER, 1_000.0, PASS),
    DEFAULT_TIER: Tier(DEFAULT_TIER, 1_000_000.0, DENY),
    BASELINE_TIER: Tier(BASELINE_TIER, 10_000_000.0, PASS),
    KUBE_BASELINE_TIER: Tier(KUBE_BASELINE_TIER, 10_000_000.0, PASS),
}


@dataclass
class PolicySet:
    """Enforced policies by tier, staged policies kept apart, network sets, and load warnings."""

    tiers: dict[str, Tier] = field(default_factory=dict)
    policies: list[Policy] = field(default_factory=list)
    staged: list[Policy] = field(default_factory=list)
    network_sets: list[NetworkSet] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def tier(self, name: str) -> Tier:
        if name in self.tiers:
            return self.tiers[name]
        return BUILTIN_TIERS.get(name) or Tier(name, None, DENY, defined=False)

    def ordered(self) -> list[tuple[Tier, list[Policy]]]:
        """Tiers by order (unset = last, then by name), each with its policies in felix's order."""
        key = (tuple(map(id, self.policies)), tuple(self.tiers.values()))
        cached = self.__dict__.get("_ordered")
        if cached is not None and cached[0] == key:
            return cached[1]
        by_tier: dict[str, list[Policy]] = {}
        for policy in self.policies:
            by_tier.setdefault(policy.tier, []).append(policy)
        tiers = sorted((self.tier(name) for name in by_tier), key=lambda t: t.sort_key)
        ordered = [(t, sorted(by_tier[t.name], key=lambda p: p.sort_key)) for t in tiers]
        self.__dict__["_ordered"] = (key, ordered)
        self.__dict__["_candidates"] = {}
        return ordered

    def candidates(self, namespace: str | None) -> list[tuple[Tier, list[Policy]]]:
        """`ordered()` narrowed to the policies that can select an endpoint of `namespace`: global
        ones and that namespace's (cached per namespace)."""
        ordered = self.ordered()
        cache: dict[str | None, list[tuple[Tier, list[Policy]]]] = self.__dict__["_candidates"]
        found = cache.get(namespace)
        if found is None:
            found = []
            for tier, policies in ordered:
                kept = [p for p in policies if p.namespace is None or p.namespace == namespace]
                if kept:
                    found.append((tier, kept))
            cache[namespace] = found
        return found

    def with_staged_enforced(self) -> PolicySet:
        """The set once its staged policies are enforced: `Set` adds or replaces the policy of the same
        kind, namespace and name; `Delete` removes it."""
        current = {p.identity: p for p in self.policies}
        for staged in self.staged:
            if staged.staged_action == "Delete":
                current.pop(staged.identity, None)
            else:
                current[staged.identity] = replace(staged, kind=staged.kind.removeprefix("Staged"),
                                                   staged_action=None)
        return PolicySet(dict(self.tiers), list(current.values()), [], list(self.network_sets), list(self.warnings))
