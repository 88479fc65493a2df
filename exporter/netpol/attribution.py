"""Which NetworkPolicies to name for a packet: the API the Kubernetes enrichment calls.

`PolicyIndex` holds the cluster's NetworkPolicies and namespace labels (fed by watches) and
answers, for a pod, a direction and a port/protocol, which policies isolate the pod, which of them
allow the traffic, and which to *name* for a drop:

    named = the isolating policies whose podSelector is the most specific (the most requirements:
            matchLabels entries + matchExpressions); ties → all of them; sorted by "ns/name".

So a drop at a pod selected by both `default-deny-all` (`podSelector: {}`) and
`temporal-frontend-policy` (`app=temporal-frontend`) names `temporal/temporal-frontend-policy`:
the policy written for that pod is where an operator adds the missing rule. `named` is empty when
nothing isolates the pod (then a Kubernetes NetworkPolicy did not drop it). The contract joins
several names with ',' (`Attribution.policy_label`).

Not thread-safe: call it from one thread (the exporter's event loop).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.netpol.errors import PolicyInvalid
from exporter.netpol.evaluator import ContainerPort, Endpoint, rule_matches_peer, rule_matches_ports
from exporter.netpol.labels import Labels, LabelSelector, freeze
from exporter.netpol.policy import DIRECTIONS, INGRESS, IPAddress, NetworkPolicy, parse_policy

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_CACHE_LIMIT = 65536  # entries per cache before it is dropped and rebuilt on demand


class _NamespacePolicies:
    """One namespace's policies, indexed by a key=value label each podSelector requires."""

    def __init__(self) -> None:
        self.by_name: dict[str, NetworkPolicy] = {}
        self.unindexed: dict[str, NetworkPolicy] = {}  # selectors pinning no label ({} or expressions)
        self.by_label: dict[tuple[str, str], dict[str, NetworkPolicy]] = {}

    def add(self, policy: NetworkPolicy) -> None:
        self.remove(policy.name)
        self.by_name[policy.name] = policy
        key = policy.pod_selector.index_key()
        bucket = self.unindexed if key is None else self.by_label.setdefault(key, {})
        bucket[policy.name] = policy

    def remove(self, name: str) -> bool:
        old = self.by_name.pop(name, None)
        if old is None:
            return False
        key = old.pod_selector.index_key()
        if key is None:
            del self.unindexed[name]
        else:
            del self.by_label[key][name]
            if not self.by_label[key]:
                del self.by_label[key]
        return True

    def candidates(self, labels: Mapping[str, str]) -> list[NetworkPolicy]:
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", freeze(self.labels))
        object.__setattr__(self, "ports", tuple(self.ports))


@dataclass(frozen=True)
class Attribution:
    isolating: tuple[str, ...]  # policies selecting the pod for that direction, "ns/name", sorted
    allowing: tuple[str, ...]  # those whose rules allow this port/protocol (and peer when given)
    named: tuple[str, ...]  # the policies to name for a drop (module docstring), sorted

    @property
    def isolated(self) -> bool:
        return bool(self.isolating)

    @property
    def allowed(self) -> bool:
        """Whether the policies allow this direction (always, when nothing isolates the pod)."""
        return not self.isolating or bool(self.allowing)

    @property
    def policy_label(self) -> str:
        """The contract's `policy` value for a drop: `named` joined with ',' ('' when none)."""
        return ",".join(self.named)


def _parse_ip(text: str | None) -> IPAddress | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class PolicyIndex:
    """NetworkPolicies indexed by namespace, with cached selector matches."""

    def __init__(self) -> None:
        self._policies: dict[str, _NamespacePolicies] = {}
        self._namespaces: dict[str, Labels] = {}
        self.invalid: dict[str, str] = {}  # "ns/name" → why the API server would reject it
        # namespace → (pod labels, direction) → isolating policies
        self._isolating: dict[str, dict[tuple[Labels, str], tuple[NetworkPolicy, ...]]] = {}
        # namespace → attribute() arguments → result; dropped when that namespace's policies change,
        # all of them when namespace labels change (peers are matched by them)
        self._results: dict[str, dict[tuple[Any, ...], Attribution]] = {}
        self._result_count = 0  # entries over all namespaces, bounded by _CACHE_LIMIT

    def _invalidate(self, namespace: str) -> None:
        self._isolating.pop(namespace, None)
        self._result_count -= len(self._results.pop(namespace, {}))

    def _clear_results(self) -> None:
        self._results.clear()
        self._result_count = 0

    # -- feeding (from watches) -------------------------------------------------------------
    def upsert_policy(self, obj: Mapping[str, Any]) -> None:
        """Add or replace a NetworkPolicy given as the API returns it (camelCase dict)."""
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        try:
            policy = parse_policy(obj)
        except PolicyInvalid as exc:
            self.delete_policy(ns, name)
            self.invalid[f"{ns}/{name}"] = str(exc)
            return
        self.invalid.pop(policy.key, None)
        self._policies.setdefault(policy.namespace, _NamespacePolicies()).add(policy)
        self._invalidate(policy.namespace)

    def delete_policy(self, namespace: str, name: str) -> None:
        self.invalid.pop(f"{namespace}/{name}", None)
        bucket = self._policies.get(namespace)
        if bucket is not None and bucket.remove(name):
            self._invalidate(namespace)
            if not bucket.by_name:
                del self._policies[namespace]

    def set_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        """Record a namespace's labels (`kubernetes.io/metadata.name` is added when missing)."""
        new = Labels({NAMESPACE_NAME_LABEL: name, **labels})
        if self._namespaces.get(name) != new:
            self._namespaces[name] = new
            self._clear_results()

    def delete_namespace(self, name: str) -> None:
        if self._namespaces.pop(name, None) is not None:
            self._clear_results()

    def namespace_labels(self, name: str) -> Labels:
        """Known labels, else the one label Kubernetes always sets."""
        labels = self._namespaces.get(name)
        return labels if labels is not None else Labels({NAMESPACE_NAME_LABEL: name})

    def policies(self, namespace: str) -> tuple[NetworkPolicy, ...]:
        bucket = self._policies.get(namespace)
        return tuple(bucket.by_name.values()) if bucket else ()

    def __len__(self) -> int:
        return sum(len(p.by_name) for p in self._policies.values())

    # -- queries ------------------------------------------------------------------------------
    def isolating_policies(
        self, namespace: str, pod_labels: Mapping[str, str], direction: str
    ) -> tuple[NetworkPolicy, ...]:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'ingress' or 'egress', got {direction!r}")
        labels = freeze(pod_labels)
        cache = self._isolating.setdefault(namespace, {})
        hit = cache.get((labels, direction))
        if hit is None:
            bucket = self._policies.get(namespace)
            candidates = bucket.candidates(labels) if bucket else []
            hit = tuple(
                sorted(
                    (p for p in candidates if p.affects(direction) and p.pod_selector.matches(labels)),
                    key=lambda p: p.key,
                )
            )
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
        if not isolating:
            return Attribution((), (), ())
        other = self._endpoint(peer) if peer is not None else None
        dst_ports: Sequence[ContainerPort] = pod_ports if direction == INGRESS else (peer.ports if peer else ())
        allowing = tuple(
            p.key
            for p in isolating
            if any(
                rule_matches_ports(rule, port, protocol, dst_ports)
                and (other is None or rule_matches_peer(rule, p.namespace, other))
                for rule in p.rules(direction)
            )
        )
        return Attribution(tuple(p.key for p in isolating), allowing, most_specific(isolating))

    def _endpoint(self, peer: Peer) -> Endpoint:
        ip = _parse_ip(peer.ip)
        if peer.namespace is None:
            return Endpoint(key=peer.ip or "", namespace=None, ip=ip)
        return Endpoint(
            key=f"{peer.namespace}/?",
            namespace=peer.namespace,
            labels=freeze(peer.labels),
            namespace_labels=self.namespace_labels(peer.namespace),
            ip=ip,
            ports=tuple(peer.ports),
        )


def specificity(selector: LabelSelector) -> int:
    return selector.specificity


def most_specific(policies: Sequence[NetworkPolicy]) -> tuple[str, ...]:
    """The policies whose podSelector has the most requirements; ties → all, sorted."""
    if not policies:
        return ()
    top = max(specificity(p.pod_selector) for p in policies)
    return tuple(sorted(p.key for p in policies if specificity(p.pod_selector) == top))
