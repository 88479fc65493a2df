"""A connection's verdict under a set of NetworkPolicies, through the engine's PolicyIndex.

Both ends are evaluated: the source's egress and the destination's ingress, from the labels the
flow carries. When the flow lacks what the decision needs, the connection is not evaluated and a
reason code says why (never a guess):

- `no-labels` — a pod end without labels, or a peer known only by a numeric identity (`unknown`)
  at an isolated end;
- `no-ip` — a peer outside the cluster whose address the record does not carry, at an isolated end;
- `reserved-peer` — the node, the API server, health checks ... at an isolated end: whether
  ipBlocks cover them is up to the CNI;
- `named-port` — denied, but an isolating policy has a named port for that protocol (flows do not
  carry container port names);
- `outside-cluster` — neither end is a pod, so no NetworkPolicy applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from exporter.naming import UNKNOWN, WORLD
from exporter.netpol.attribution import Attribution, Peer, PolicyIndex
from exporter.netpol.loading import LoadedPolicy
from exporter.netpol.policy import NetworkPolicy
from exporter.whatif.events import EGRESS, INGRESS
from exporter.whatif.sides import Side

REASONS = ("no-labels", "no-ip", "reserved-peer", "named-port", "outside-cluster")
_CACHE_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class Decision:
    """`reason` set: not evaluated. Otherwise the per-side attributions (None: that end is no pod)."""

    egress: Attribution | None = None
    ingress: Attribution | None = None
    reason: str = ""
    self_traffic: bool = False

    @property
    def allowed(self) -> bool:
        if self.self_traffic:
            return True
        return all(a is None or a.allowed for a in (self.egress, self.ingress))

    def side(self, direction: str) -> Attribution | None:
        return self.egress if direction == EGRESS else self.ingress


def build_index(policies: Sequence[LoadedPolicy]) -> PolicyIndex:
    index = PolicyIndex()
    for lp in policies:
        obj = dict(lp.document.obj)
        obj["metadata"] = {**(obj.get("metadata") or {}), "namespace": lp.policy.namespace}
        index.upsert_policy(obj)
    return index


class Decider:
    def __init__(self, index: PolicyIndex) -> None:
        self.index = index
        self._cache: dict[tuple[Side, Side, int | None, str], Decision] = {}
        self._namespaces: set[str] = set()

    def decide(self, src: Side, dst: Side, port: int | None, protocol: str) -> Decision:
        key = (src, dst, port, protocol)
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            hit = self._cache[key] = self._decide(src, dst, port, protocol)
        return hit

    def _learn_namespace(self, side: Side) -> None:
        if side.namespace and side.namespace not in self._namespaces and side.namespace_labels is not None:
            self._namespaces.add(side.namespace)
            self.index.set_namespace(side.namespace, side.namespace_labels)

    def _decide(self, src: Side, dst: Side, port: int | None, protocol: str) -> Decision:
        if not src.is_pod and not dst.is_pod:
            return Decision(reason="outside-cluster")
        for side in (src, dst):
            if side.is_pod and side.labels is None:
                return Decision(reason="no-labels")
            self._learn_namespace(side)
        if src.is_pod and dst.is_pod and src.ip and src.ip == dst.ip:
            return Decision(self_traffic=True)
        egress = self._direction(src, dst, EGRESS, port, protocol) if src.is_pod else None
        ingress = self._direction(dst, src, INGRESS, port, protocol) if dst.is_pod else None
        if isinstance(egress, str):
            return Decision(reason=egress)
        if isinstance(ingress, str):
            return Decision(reason=ingress)
        return Decision(egress, ingress)

    def _direction(self, pod: Side, other: Side, direction: str, port: int | None, protocol: str) -> Attribution | str:
        """The attribution at `pod`, or a reason code when the flow lacks what it depends on."""
        assert pod.labels is not None
        isolating = self.index.isolating_policies(pod.namespace, pod.labels, direction)
        if not isolating:
            return Attribution((), (), ())
        if not other.is_pod and other.name == UNKNOWN:
            return "no-labels"  # a pod known by its identity only (another cluster, a stale cache)
        if not other.is_pod and other.name != WORLD:
            return "reserved-peer"
        if not other.is_pod and not other.ip:
            return "no-ip"
        peer = Peer(namespace=other.namespace or None, labels=other.labels or {}, ip=other.ip or None)
        result = self.index.attribute(pod.namespace, pod.labels, direction, port, protocol, peer=peer)
        if not result.allowed and _has_named_port(isolating, direction, protocol):
            return "named-port"
        return result


def _has_named_port(policies: Sequence[NetworkPolicy], direction: str, protocol: str) -> bool:
    for policy in policies:
        for rule in policy.rules(direction):
            if any(isinstance(p.port, str) and p.protocol == protocol for p in rule.ports or ()):
                return True
    return False
