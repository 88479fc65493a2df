"""A connection's verdict under a set of policies, through the engine's `evaluate`.

Both ends are evaluated: the source's egress and the destination's ingress, from the labels the
flow carries. When the flow or the policies leave the decision open, the connection is not
evaluated and a reason code says why (never a guess):

- `no-labels` — a pod end without labels, or a peer known only by a numeric identity (`unknown`)
  at an isolated end;
- `no-ip` — a peer outside the cluster (the internet, a Calico NetworkSet) whose address the record
  does not carry, at an isolated end;
- `reserved-peer` — the node, the API server, health checks ... at an isolated end: whether
  ipBlocks cover them is up to the CNI;
- `named-port` — denied, but an isolating policy has a named port for that protocol (flows do not
  carry container port names);
- `fqdn-rule` — the decision depends on a `toFQDNs` rule (needs the DNS answers the pod saw);
- `l7-rule` — allowed by a policy with L7 rules, which may still deny the requests;
- `undecidable-rule` — another rule the engine cannot decide offline;
- `outside-cluster` — neither end is a pod, so no policy applies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from exporter.decoders.hubble_names import RESERVED_NAMES
from exporter.naming import UNKNOWN, WORLD
from exporter.netpol.attribution import most_specific
from exporter.netpol.evaluator import UNDECIDED, DirectionVerdict, Endpoint, evaluate, group_by_namespace
from exporter.netpol.labels import Labels
from exporter.netpol.loading import LoadedPolicy
from exporter.netpol.policy import NetworkPolicy
from exporter.whatif.events import EGRESS
from exporter.whatif.sides import Side

if TYPE_CHECKING:
    from exporter.netpol.calico import SideResult

REASONS = ("no-labels", "no-ip", "reserved-peer", "named-port", "fqdn-rule", "l7-rule", "undecidable-rule",
           "outside-cluster", "service-account", "tier-undefined")
DEFAULT_ALLOW = "default-allow"
# Peers outside the pods that are no address on the internet: the node, the API server, health checks ...
RESERVED_PEERS = frozenset(RESERVED_NAMES.values()) - {WORLD, UNKNOWN}
_CACHE_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class Decision:
    """`reason` set: not evaluated. Otherwise the per-side verdicts (None: that end is no pod)."""

    egress: DirectionVerdict | SideResult | None = None  # SideResult: the tiered engine (tiered_decide)
    ingress: DirectionVerdict | SideResult | None = None
    reason: str = ""
    self_traffic: bool = False

    @property
    def allowed(self) -> bool:
        if self.self_traffic:
            return True
        return all(v is None or v.allowed for v in (self.egress, self.ingress))

    def side(self, direction: str) -> DirectionVerdict | SideResult | None:
        return self.egress if direction == EGRESS else self.ingress


class Deciding(Protocol):
    """What the report needs of a decider (`Decider`, `tiered_decide.TieredDecider`)."""

    def decide(self, src: Side, dst: Side, port: int | None, protocol: str) -> Decision: ...

    def deny_label(self, side: Any) -> str: ...

    def allow_label(self, side: Any) -> str: ...


class CachingDecider:
    """What every engine's decider shares: decisions cached per (source, destination, port, protocol),
    and the connections no engine can decide (both ends outside the cluster, a pod without labels)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[Side, Side, int | None, str], Decision] = {}

    def decide(self, src: Side, dst: Side, port: int | None, protocol: str) -> Decision:
        key = (src, dst, port, protocol)
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            if not src.is_pod and not dst.is_pod:
                hit = Decision(reason="outside-cluster")
            elif (src.is_pod and src.labels is None) or (dst.is_pod and dst.labels is None):
                hit = Decision(reason="no-labels")
            else:
                hit = self._decide(src, dst, port, protocol)
            self._cache[key] = hit
        return hit

    def _decide(self, src: Side, dst: Side, port: int | None, protocol: str) -> Decision:
        raise NotImplementedError


class Decider(CachingDecider):
    def __init__(self, policies: Sequence[LoadedPolicy]) -> None:
        super().__init__()
        self.policies = {p.policy.key: p for p in policies}
        self.by_namespace = group_by_namespace([p.policy for p in policies])

    def _decide(self, src: Side, dst: Side, port: int | None, protocol: str) -> Decision:
        verdict = evaluate(self.by_namespace, _endpoint(src, "src"), _endpoint(dst, "dst"), port, protocol)
        if verdict.self_traffic:
            return Decision(self_traffic=True)
        for side, other in ((verdict.egress, dst), (verdict.ingress, src)):
            reason = self._reason(side, other, protocol) if side is not None else ""
            if reason:
                return Decision(reason=reason)
        return Decision(verdict.egress, verdict.ingress)

    def _reason(self, side: DirectionVerdict, other: Side, protocol: str) -> str:
        """Why this end's decision cannot be trusted offline, or ""."""
        if not side.isolated and not side.denying:
            return ""
        if not other.is_pod:
            if other.name == UNKNOWN:
                return "no-labels"  # a pod known by its identity only (another cluster, a stale cache)
            if other.name in RESERVED_PEERS:
                return "reserved-peer"  # else the internet, or a Calico NetworkSet: matched by address
            if not other.ip:
                return "no-ip"
        if side.outcome == UNDECIDED:
            return self._rule_reason(side.undecided or side.isolating)
        if side.allowed:
            return "l7-rule" if any(_has_l7(self._doc(k)) for k in side.allowing) else ""
        if any(_has_named_port(self.policies[k].policy, side.direction, protocol)
               for k in side.isolating if k in self.policies):
            return "named-port"
        return ""

    def _doc(self, key: str) -> Any:
        loaded = self.policies.get(key)
        return loaded.document.obj if loaded is not None else None

    def _rule_reason(self, keys: Sequence[str]) -> str:
        docs = [self._doc(k) for k in keys]
        if any(_contains_key(d, "toFQDNs") for d in docs):
            return "fqdn-rule"
        if any(_has_l7(d) for d in docs):
            return "l7-rule"
        return "undecidable-rule"

    def deny_label(self, side: DirectionVerdict) -> str:
        """The policy to name for a denial: the denying policies, else the most specific isolating ones."""
        if side.denying:
            return ",".join(sorted(side.denying))
        isolating = [self.policies[k].policy for k in side.isolating if k in self.policies]
        if not isolating:
            return ",".join(side.isolating)
        return ",".join(most_specific(isolating))

    @staticmethod
    def allow_label(side: DirectionVerdict) -> str:
        return ",".join(side.allowing) if side.isolated and side.allowing else DEFAULT_ALLOW


def _endpoint(side: Side, role: str) -> Endpoint:
    ip = ipaddress.ip_address(side.ip) if side.ip else None
    if not side.is_pod:
        return Endpoint(key=side.ip or f"{side.name}#{role}", namespace=None, ip=ip,
                        entity=side.name)  # Cilium's reserved identities
    # the same address is the same pod (self-traffic); without one, the two ends are told apart
    return Endpoint(key=f"{side.namespace}/{side.ip}" if side.ip else f"{side.namespace}/{side.name}#{role}",
                    namespace=side.namespace, labels=side.labels or Labels(),
                    namespace_labels=side.namespace_labels or Labels(), ip=ip)


def _has_named_port(policy: Any, direction: str, protocol: str) -> bool:
    if not isinstance(policy, NetworkPolicy):
        return False
    return any(isinstance(p.port, str) and p.protocol == protocol
               for rule in policy.rules(direction) for p in rule.ports or ())


def _contains_key(obj: Any, key: str) -> bool:
    if isinstance(obj, Mapping):
        return key in obj or any(_contains_key(v, key) for v in obj.values())
    if isinstance(obj, list):
        return any(_contains_key(v, key) for v in obj)
    return False


def _has_l7(doc: Any) -> bool:
    """Whether a Cilium policy object has L7 `rules` (http, dns, kafka ...) under a `toPorts` entry."""
    if isinstance(doc, Mapping):
        for key, value in doc.items():
            if key == "toPorts" and isinstance(value, list):
                if any(isinstance(entry, Mapping) and entry.get("rules") for entry in value):
                    return True
            elif _has_l7(value):
                return True
    elif isinstance(doc, list):
        return any(_has_l7(v) for v in doc)
    return False
