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
        self._policies: dict[str, dict[str, NetworkPolicy]] = {}
        self._namespaces: dict[str, Labels] = {}
        self.invalid: dict[str, str] = {}  # "ns/name" → why the API server would reject it
        # namespace → (pod labels, direction) → isolating policies
        self._isolating: dict[str, dict[tuple[Labels, str], tuple[NetworkPolicy, ...]]] = {}

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
        self._policies.setdefault(policy.namespace, {})[policy.name] = policy
        self._isolating.pop(policy.namespace, None)

    def delete_policy(self, namespace: str, name: str) -> None:
        self.invalid.pop(f"{namespace}/{name}", None)
        if self._policies.get(namespace, {}).pop(name, None) is not None:
            self._isolating.pop(namespace, None)
            if not self._policies[namespace]:
                del self._policies[namespace]

    def set_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        """Record a namespace's labels (`kubernetes.io/metadata.name` is added when missing)."""
        self._namespaces[name] = Labels({NAMESPACE_NAME_LABEL: name, **labels})

    def delete_namespace(self, name: str) -> None:
        self._namespaces.pop(name, None)

    def namespace_labels(self, name: str) -> Labels:
        """Known labels, else the one label Kubernetes always sets."""
        labels = self._namespaces.get(name)
        return labels if labels is not None else Labels({NAMESPACE_NAME_LABEL: name})

    def policies(self, namespace: str) -> tuple[NetworkPolicy, ...]:
        return tuple(self._policies.get(namespace, {}).values())

    def __len__(self) -> int:
        return sum(len(p) for p in self._policies.values())

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
            hit = tuple(
                sorted(
                    (
                        p
                        for p in self._policies.get(namespace, {}).values()
                        if p.affects(direction) and p.pod_selector.matches(labels)
                    ),
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
        isolating = self.isolating_policies(namespace, pod_labels, direction)
        if not isolating:
            return Attribution((), (), ())
        protocol = protocol.upper()
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
