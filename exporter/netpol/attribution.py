"""Which policies to name for a packet: the API the Kubernetes enrichment calls.

`PolicyIndex` holds the cluster's NetworkPolicies, CiliumNetworkPolicies and
CiliumClusterwideNetworkPolicies and the namespace labels (fed by watches) and
answers, for a pod, a direction and a port/protocol, which policies isolate the pod, which of them
allow the traffic, and which to *name* for a drop:

    named = the isolating policies whose podSelector (a Cilium policy: endpointSelector, not
            counting namespace requirements) is the most specific (the most requirements:
            matchLabels entries + matchExpressions); ties → all of them; sorted by policy value.

So a drop at a pod selected by both `default-deny-all` (`podSelector: {}`) and
`temporal-frontend-policy` (`app=temporal-frontend`) names `temporal/temporal-frontend-policy`:
the policy written for that pod is where an operator adds the missing rule. `named` is empty when
nothing isolates the pod (then a Kubernetes NetworkPolicy did not drop it). The contract joins
several names with ',' (`Attribution.policy_label`).

Not thread-safe: call it from one thread (the exporter's event loop).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.netpol.cilium import CILIUM_KINDS, CiliumPolicy, parse_ip
from exporter.netpol.cilium_parse import parse_cilium_policy
from exporter.netpol.errors import PolicyInvalid
from exporter.netpol.evaluator import (
    CLUSTER_SCOPE,
    ContainerPort,
    DirectionVerdict,
    Endpoint,
    evaluate_direction,
    rule_matches_peer,
    rule_matches_ports,
)
from exporter.netpol.labels import Labels, freeze
from exporter.netpol.policy import DIRECTIONS, INGRESS, NetworkPolicy, parse_policy

AnyPolicy = NetworkPolicy | CiliumPolicy
NETWORK_POLICY = "NetworkPolicy"

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_CACHE_LIMIT = 65536  # entries per cache before it is dropped and rebuilt on demand


PolicyId = tuple[str, str]  # (kind, name)


def _index_key(policy: AnyPolicy) -> tuple[str, str] | None:
    """A key=value label every pod the policy selects carries (Cilium policies: not indexed)."""
    return policy.pod_selector.index_key() if isinstance(policy, NetworkPolicy) else None


class _NamespacePolicies:
    """One namespace's policies (or the cluster-scoped ones), indexed by a key=value label each
    podSelector requires."""

    def __init__(self) -> None:
        self.by_name: dict[PolicyId, AnyPolicy] = {}
        self.unindexed: dict[PolicyId, AnyPolicy] = {}  # selectors pinning no label ({} or expressions)
        self.by_label: dict[tuple[str, str], dict[PolicyId, AnyPolicy]] = {}

    def add(self, policy: AnyPolicy) -> None:
        ident = (policy.kind, policy.name)
        self.remove(ident)
        self.by_name[ident] = policy
        key = _index_key(policy)
        bucket = self.unindexed if key is None else self.by_label.setdefault(key, {})
        bucket[ident] = policy

    def remove(self, ident: PolicyId) -> bool:
        old = self.by_name.pop(ident, None)
        if old is None:
            return False
        key = _index_key(old)
        if key is None:
            del self.unindexed[ident]
        else:
            del self.by_label[key][ident]
            if not self.by_label[key]:
                del self.by_label[key]
        return True

    def candidates(self, labels: Mapping[str, str]) -> list[AnyPolicy]:
        found = list(self.unindexed.values())
        for item in labels.items():
            bucket = self.by_label.get(item)
            if bucket:
                found.extend(bucket.values())
        return found


@dataclass(frozen=True)
class Peer:
    """The other side of the connection, when known.

    A pod: `namespace` and `labels` (and `ip` when known, for ipBlock rules; `ports`, its container
    ports, resolve named ports of egress rules). Outside the cluster: `namespace` None and `ip` set.
    """

    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=Labels)
    ip: str | None = None
    ports: Sequence[ContainerPort] = ()
    entity: str | None = None  # outside the pods: Cilium's reserved identity (world, host, ...)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", freeze(self.labels))
        object.__setattr__(self, "ports", tuple(self.ports))


@dataclass(frozen=True)
class Attribution:
    isolating: tuple[str, ...]  # policies selecting the pod for that direction, "ns/name", sorted
    allowing: tuple[str, ...]  # those whose rules allow this port/protocol (and peer when given)
    named: tuple[str, ...]  # the policies to name for a drop (module docstring), sorted
    denying: tuple[str, ...] = ()  # Cilium policies whose deny rules match (peer given)

    @property
    def isolated(self) -> bool:
        return bool(self.isolating)

    @property
    def allowed(self) -> bool:
        """Whether the policies allow this direction (always, when nothing isolates the pod)."""
        return not self.denying and (not self.isolating or bool(self.allowing))

    @property
    def policy_label(self) -> str:
        """The contract's `policy` value for a drop: `named` joined with ',' ('' when none)."""
        return ",".join(self.named)


class PolicyIndex:
    """NetworkPolicies indexed by namespace, with cached selector matches."""

    def __init__(self) -> None:
        self._policies: dict[str, _NamespacePolicies] = {}  # CLUSTER_SCOPE ("") holds the CCNPs
        self._namespaces: dict[str, Labels] = {}
        # policy value ("ns/name"; other kinds: "<Kind> <value>") → why the API server would reject it
        self.invalid: dict[str, str] = {}
        # namespace → (pod labels, direction) → isolating policies
        self._isolating: dict[str, dict[tuple[Labels, str], tuple[AnyPolicy, ...]]] = {}
        # namespace → attribute() arguments → result; dropped when that namespace's policies change,
        # all of them when namespace labels change (peers are matched by them)
        self._results: dict[str, dict[tuple[Any, ...], Attribution]] = {}
        self._result_count = 0  # entries over all namespaces, bounded by _CACHE_LIMIT

    def _invalidate(self, namespace: str) -> None:
        if namespace == CLUSTER_SCOPE:  # a cluster-scoped policy may select in every namespace
            self._isolating.clear()
            self._clear_results()
            return
        self._isolating.pop(namespace, None)
        self._result_count -= len(self._results.pop(namespace, {}))

    def _clear_results(self) -> None:
        self._results.clear()
        self._result_count = 0

    # -- feeding (from watches) -------------------------------------------------------------
    @staticmethod
    def invalid_key(kind: str, namespace: str, name: str) -> str:
        value = f"{namespace}/{name}" if namespace else name
        return value if kind == NETWORK_POLICY else f"{kind} {value}"

    def upsert_policy(self, obj: Mapping[str, Any], kind: str | None = None) -> AnyPolicy | None:
        """Add or replace a policy given as the API returns it (camelCase dict; list items carry no
        `kind`: pass it). Returns the parsed policy, None when invalid (recorded in `invalid`)."""
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        kind = kind or str(obj.get("kind") or NETWORK_POLICY)
        if kind == "CiliumClusterwideNetworkPolicy":
            ns = ""
        try:
            policy: AnyPolicy
            if kind in CILIUM_KINDS:
                policy = parse_cilium_policy({**obj, "kind": kind, "apiVersion": obj.get("apiVersion", "cilium.io/v2")})
            else:
                policy = parse_policy(obj)
        except PolicyInvalid as exc:
            self.delete_policy(ns, name, kind)
            self.invalid[self.invalid_key(kind, ns, name)] = str(exc)
            return None
        self.add_parsed(policy)
        return policy

    def add_parsed(self, policy: AnyPolicy) -> None:
        scope = policy.namespace or CLUSTER_SCOPE
        self.invalid.pop(self.invalid_key(policy.kind, scope, policy.name), None)
        self._policies.setdefault(scope, _NamespacePolicies()).add(policy)
        self._invalidate(scope)

    def delete_policy(self, namespace: str, name: str, kind: str = NETWORK_POLICY) -> None:
        if kind == "CiliumClusterwideNetworkPolicy":
            namespace = CLUSTER_SCOPE
        self.invalid.pop(self.invalid_key(kind, namespace, name), None)
        bucket = self._policies.get(namespace)
        if bucket is not None and bucket.remove((kind, name)):
            self._invalidate(namespace)
            if not bucket.by_name:
                del self._policies[namespace]

    def all_policies(self) -> list[AnyPolicy]:
        return [p for bucket in self._policies.values() for p in bucket.by_name.values()]

    def set_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        """Record a namespace's labels (`kubernetes.io/metadata.name` is added when missing)."""
        new = Labels({NAMESPACE_NAME_LABEL: name, **labels})
        if self._namespaces.get(name) != new:
            self._namespaces[name] = new
            self._clear_results()
            self._isolating.pop(name, None)  # Cilium selectors may match namespace labels

    def delete_namespace(self, name: str) -> None:
        if self._namespaces.pop(name, None) is not None:
            self._clear_results()
            self._isolating.pop(name, None)

    def namespace_labels(self, name: str) -> Labels:
        """Known labels, else the one label Kubernetes always sets."""
        labels = self._namespaces.get(name)
        return labels if labels is not None else Labels({NAMESPACE_NAME_LABEL: name})

    def candidates(self, namespace: str, pod_labels: Mapping[str, str]) -> list[AnyPolicy]:
        """The policies that may select a pod of `namespace` with these labels."""
        found = []
        for scope in (namespace, CLUSTER_SCOPE):
            bucket = self._policies.get(scope)
            if bucket is not None:
                found.extend(bucket.candidates(pod_labels))
        return found

    def pod_endpoint(self, namespace: str, labels: Mapping[str, str], ip: str | None = None,
                     ports: Sequence[ContainerPort] = ()) -> Endpoint:
        return Endpoint(key=f"{namespace}/?", namespace=namespace, labels=freeze(labels),
                        namespace_labels=self.namespace_labels(namespace), ip=parse_ip(ip), ports=tuple(ports))

    def decide(self, pod: Endpoint, other: Endpoint, direction: str, port: int | None,
               protocol: str) -> DirectionVerdict:
        """The full verdict of one side (isolating, allowing, denying, undecided), every kind."""
        assert pod.namespace is not None
        return evaluate_direction(self.candidates(pod.namespace, pod.labels), pod, other, direction, port, protocol)

    def __len__(self) -> int:
        return sum(len(p.by_name) for p in self._policies.values())

    # -- queries ------------------------------------------------------------------------------
    def isolating_policies(
        self, namespace: str, pod_labels: Mapping[str, str], direction: str
    ) -> tuple[AnyPolicy, ...]:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'ingress' or 'egress', got {direction!r}")
        labels = freeze(pod_labels)
        cache = self._isolating.setdefault(namespace, {})
        hit = cache.get((labels, direction))
        if hit is None:
            candidates = self.candidates(namespace, labels)
            pod = (self.pod_endpoint(namespace, labels)
                   if any(isinstance(p, CiliumPolicy) for p in candidates) else None)
            hit = tuple(sorted((p for p in candidates if _isolates(p, pod, labels, direction)), key=lambda p: p.key))
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[(labels, direction)] = hit
        return hit

    def attribute(
        self,
        namespace: str,
        pod_labels: Mapping[str, str],
        direction: str,
        port: int | None,
        protocol: str,
        peer: Peer | None = None,
        pod_ports: Sequence[ContainerPort] = (),
    ) -> Attribution:
        """Attribute traffic at a pod: the destination for "ingress", the source for "egress".

        `peer` None: rules are matched on port/protocol only (any peer). `pod_ports`, the pod's
        container ports, resolve named ports of ingress rules (the peer's ports do for egress).
        """
        labels = freeze(pod_labels)
        protocol = protocol.upper()
        ports = tuple(pod_ports)
        key = (labels, direction, port, protocol, peer, ports)
        cached = self._results.get(namespace, {}).get(key)
        if cached is not None:
            return cached
        if self._result_count >= _CACHE_LIMIT:
            self._clear_results()
        result = self._attribute(namespace, labels, direction, port, protocol, peer, ports)
        self._results.setdefault(namespace, {})[key] = result
        self._result_count += 1
        return result

    def _attribute(
        self,
        namespace: str,
        labels: Labels,
        direction: str,
        port: int | None,
        protocol: str,
        peer: Peer | None,
        pod_ports: tuple[ContainerPort, ...],
    ) -> Attribution:
        isolating = self.isolating_policies(namespace, labels, direction)
        other = self._endpoint(peer) if peer is not None else None
        dst_ports: Sequence[ContainerPort] = pod_ports if direction == INGRESS else (peer.ports if peer else ())
        allowing: list[str] = []
        denying: list[str] = []
        cilium = ([p for p in self.candidates(namespace, labels) if isinstance(p, CiliumPolicy)]
                  if other is not None else [])
        if cilium:  # Cilium allows without isolating, and denies: the peer decides
            pod = self.pod_endpoint(namespace, labels, ports=pod_ports)
            for c in cilium:
                decision = c.decide(pod, other, direction, port, protocol, dst_ports)
                if decision is not None:
                    if decision.allows:
                        allowing.append(c.key)
                    if decision.denies:
                        denying.append(c.key)
        if not isolating and not allowing and not denying:
            return Attribution((), (), ())
        for p in isolating:
            if isinstance(p, NetworkPolicy) and any(
                rule_matches_ports(rule, port, protocol, dst_ports)
                and (other is None or rule_matches_peer(rule, p.namespace, other))
                for rule in p.rules(direction)
            ):
                allowing.append(p.key)
        return Attribution(tuple(p.key for p in isolating), tuple(sorted(set(allowing))), most_specific(isolating),
                           tuple(sorted(set(denying))))

    def _endpoint(self, peer: Peer) -> Endpoint:
        ip = parse_ip(peer.ip)
        if peer.namespace is None:
            return Endpoint(key=peer.ip or "", namespace=None, ip=ip, entity=peer.entity)
        return Endpoint(
            key=f"{peer.namespace}/?",
            namespace=peer.namespace,
            labels=freeze(peer.labels),
            namespace_labels=self.namespace_labels(peer.namespace),
            ip=ip,
            ports=tuple(peer.ports),
        )


def _isolates(policy: AnyPolicy, pod: Endpoint | None, labels: Labels, direction: str) -> bool:
    """`pod` is needed (and given) only when a Cilium policy is among the candidates."""
    if isinstance(policy, NetworkPolicy):
        return policy.affects(direction) and policy.pod_selector.matches(labels)
    return pod is not None and policy.isolates(pod, direction)


def most_specific(policies: Sequence[AnyPolicy]) -> tuple[str, ...]:
    """The policies whose pod selector has the most requirements; ties → all, sorted."""
    if not policies:
        return ()
    top = max(p.specificity for p in policies)
    return tuple(sorted({p.key for p in policies if p.specificity == top}))
