"""Reachability under NetworkPolicies (the API reference's semantics) and Cilium policies.

A direction (ingress at the destination pod, egress at the source pod) is *isolated* when some
policy in the pod's namespace selects the pod and lists that direction in its (defaulted)
`policyTypes`. An isolated direction allows exactly the union of the rules of those policies; a
rule allows when one of its peers matches (missing/empty list: any peer) and one of its ports
matches (missing/empty list: any port). A pod's traffic to itself is always allowed, and an
address outside the cluster has no policies of its own.

CiliumNetworkPolicies and CiliumClusterwideNetworkPolicies (`exporter.netpol.cilium`) join the same
union, as Cilium enforces them together: their deny entries win over every allow, a rule with
`enableDefaultDeny` off adds allows without isolating, and what cannot be decided offline leaves
the verdict `undecided` instead of guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.netpol.cilium import CiliumPolicy
from exporter.netpol.labels import Labels
from exporter.netpol.policy import EGRESS, INGRESS, IPAddress, NetworkPolicy, PolicyPeer, PolicyPort, Rule, port_in


@dataclass(frozen=True)
class ContainerPort:
    """A container port of a pod, as named ports resolve against it."""

    port: int
    protocol: str = "TCP"
    name: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """A pod (`namespace` set) or an address outside the cluster (`namespace` None, `ip` set)."""

    key: str  # "ns/pod" or the IP, for display and to recognise self-traffic
    namespace: str | None
    labels: Labels = field(default_factory=Labels)
    namespace_labels: Labels = field(default_factory=Labels)
    ip: IPAddress | None = None
    ports: tuple[ContainerPort, ...] = ()
    # Outside the pods: Cilium's reserved identity (world, host, remote-node, kube-apiserver, ...).
    entity: str | None = None

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


CLUSTER_SCOPE = ""  # group_by_namespace's key for cluster-scoped policies (CCNP)
ALLOW, DENY, UNDECIDED = "allow", "deny", "undecided"


def selects(policy: NetworkPolicy, pod: Endpoint) -> bool:
    return pod.namespace == policy.namespace and policy.pod_selector.matches(pod.labels)


def peer_matches(peer: PolicyPeer, policy_namespace: str, other: Endpoint) -> bool:
    """Whether a `from`/`to` entry matches the other side of the connection."""
    if peer.ip_block is not None:
        # ipBlock matches any address in range, pod IPs included (as the upstream e2e tests expect).
        return other.ip is not None and peer.ip_block.contains(other.ip)
    if other.namespace is None:
        return False  # selectors only ever match pods
    if peer.namespace_selector is None:
        if other.namespace != policy_namespace:
            return False
    elif not peer.namespace_selector.matches(other.namespace_labels):
        return False
    return peer.pod_selector is None or peer.pod_selector.matches(other.labels)


def port_matches(spec: PolicyPort, port: int | None, protocol: str, dst_ports: Sequence[ContainerPort]) -> bool:
    """Whether a `ports` entry covers port/protocol; named ports resolve on the destination pod."""
    return spec.protocol == protocol and port_in(spec.port, spec.end_port, port, protocol, dst_ports)


def rule_matches_ports(rule: Rule, port: int | None, protocol: str, dst_ports: Sequence[ContainerPort]) -> bool:
    return rule.ports is None or any(port_matches(p, port, protocol, dst_ports) for p in rule.ports)


def rule_matches_peer(rule: Rule, policy_namespace: str, other: Endpoint) -> bool:
    return rule.peers is None or any(peer_matches(p, policy_namespace, other) for p in rule.peers)


@dataclass(frozen=True)
class DirectionVerdict:
    """One side's decision: the policies isolating the pod, those that allow, those that deny.

    `undecided`: policies whose entries offline evaluation cannot decide (toFQDNs, ...) and that
    could change the outcome here.
    """

    direction: str
    isolating: tuple[str, ...]
    allowing: tuple[str, ...]
    denying: tuple[str, ...] = ()
    maybe_allowing: tuple[str, ...] = ()
    maybe_denying: tuple[str, ...] = ()

    @property
    def isolated(self) -> bool:
        return bool(self.isolating)

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOW

    @property
    def outcome(self) -> str:
        if self.denying:
            return DENY
        if self.maybe_denying:
            return UNDECIDED
        if not self.isolating or self.allowing:
            return ALLOW
        return UNDECIDED if self.maybe_allowing else DENY

    @property
    def undecided(self) -> tuple[str, ...]:
        if self.outcome != UNDECIDED:
            return ()
        return tuple(sorted({*self.maybe_denying, *self.maybe_allowing}))  # undecided: nothing denies for sure


def evaluate_direction(
    policies: Iterable[NetworkPolicy | CiliumPolicy],
    pod: Endpoint,
    other: Endpoint,
    direction: str,
    port: int | None,
    protocol: str,
) -> DirectionVerdict:
    """`pod` is the destination for ingress, the source for egress; `other` is the far side."""
    dst_ports = pod.ports if direction == INGRESS else other.ports
    found: dict[str, set[str]] = {k: set() for k in ("isolating", "allowing", "denying", "maybe_a", "maybe_d")}
    for policy in policies:
        if isinstance(policy, CiliumPolicy):
            decision = policy.decide(pod, other, direction, port, protocol, dst_ports)
            if decision is None:
                continue
            for name, hit in (("isolating", decision.isolates), ("allowing", decision.allows),
                              ("denying", decision.denies), ("maybe_a", decision.maybe_allows),
                              ("maybe_d", decision.maybe_denies)):
                if hit:
                    found[name].add(policy.key)
            continue
        if not policy.affects(direction) or not selects(policy, pod):
            continue
        found["isolating"].add(policy.key)
        if any(
            rule_matches_ports(rule, port, protocol, dst_ports) and rule_matches_peer(rule, policy.namespace, other)
            for rule in policy.rules(direction)
        ):
            found["allowing"].add(policy.key)
    return DirectionVerdict(direction, *(tuple(sorted(found[k])) for k in
                                         ("isolating", "allowing", "denying", "maybe_a", "maybe_d")))


@dataclass(frozen=True)
class Verdict:
    """A connection's decision: egress at the source pod, ingress at the destination pod."""

    egress: DirectionVerdict | None  # None: the source is outside the cluster
    ingress: DirectionVerdict | None  # None: the destination is outside the cluster
    self_traffic: bool = False

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOW

    @property
    def outcome(self) -> str:
        """allow, deny, or undecided (a policy part offline evaluation cannot decide could change it)."""
        if self.self_traffic:
            return ALLOW
        outcomes = {v.outcome for v in (self.egress, self.ingress) if v is not None}
        return DENY if DENY in outcomes else UNDECIDED if UNDECIDED in outcomes else ALLOW


def policies_at(policies_by_namespace: Mapping[str, Sequence[Any]], namespace: str) -> list[Any]:
    """The policies that may select a pod of `namespace`: its own and the cluster-scoped ones."""
    return [*policies_by_namespace.get(namespace, ()), *policies_by_namespace.get(CLUSTER_SCOPE, ())]


def evaluate(
    policies_by_namespace: Mapping[str, Sequence[Any]],
    src: Endpoint,
    dst: Endpoint,
    port: int | None,
    protocol: str,
) -> Verdict:
    egress = ingress = None
    if src.namespace is not None:
        egress = evaluate_direction(policies_at(policies_by_namespace, src.namespace), src, dst, EGRESS, port,
                                    protocol)
    if dst.namespace is not None:
        ingress = evaluate_direction(policies_at(policies_by_namespace, dst.namespace), dst, src, INGRESS, port,
                                     protocol)
    return Verdict(egress=egress, ingress=ingress, self_traffic=src.is_pod and src.key == dst.key)


def group_by_namespace(policies: Iterable[Any]) -> dict[str, list[Any]]:
    """Policies per namespace; cluster-scoped ones (namespace None) under CLUSTER_SCOPE."""
    grouped: dict[str, list[Any]] = {}
    for policy in policies:
        grouped.setdefault(policy.namespace or CLUSTER_SCOPE, []).append(policy)
    return grouped
