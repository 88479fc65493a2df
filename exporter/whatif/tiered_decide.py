"""A connection's verdict under a Calico / AdminNetworkPolicy set (the tiered engine,
exporter.netpol.calico), shaped as `exporter.whatif.decide.Decision` for the report.

The engine's reasons for not evaluating map onto whatif's codes: an address it needs
(`peer-ip`) → `no-ip`; a node's labels (`host-endpoint`) → `reserved-peer`; `named-port`;
an HTTP match → `l7-rule`; a service account (flows carry none) → `service-account`; a tier
without its `Tier` document → `tier-undefined`; anything else (Service matches, source ports,
`domainNames`, ...) → `undecidable-rule`. A node or reserved peer has no policy side of its own here
(host endpoint policies are not read), as in the NetworkPolicy engine.
"""

from __future__ import annotations

import ipaddress

from exporter.naming import UNKNOWN
from exporter.netpol.calico import NOT_EVALUATED, Peer, PolicySet, SideResult, evaluate
from exporter.netpol.labels import Labels
from exporter.whatif.decide import DEFAULT_ALLOW, RESERVED_PEERS, CachingDecider, Decision
from exporter.whatif.sides import Side

ENGINE_REASONS = {
    "peer-ip": "no-ip",
    "host-endpoint": "reserved-peer",
    "named-port": "named-port",
    "http-match": "l7-rule",
    "service-account": "service-account",
    "tier-undefined": "tier-undefined",
}


def peer_of(side: Side, role: str) -> Peer:
    ip = ipaddress.ip_address(side.ip) if side.ip else None
    if not side.is_pod:
        if side.name in RESERVED_PEERS:
            return Peer("host", side.name, labels=None, ip=ip)
        return Peer("external", side.ip or f"{side.name}#{role}", ip=ip)
    # the same address is the same pod (self-traffic); without one, the two ends are told apart
    key = f"{side.namespace}/{side.ip}" if side.ip else f"{side.namespace}/{side.name}#{role}"
    return Peer("pod", key, side.namespace, side.labels or Labels(), side.namespace_labels or Labels(), ip)


class TieredDecider(CachingDecider):
    """`decide`, `deny_label` and `allow_label` as `exporter.whatif.decide.Decider` has them."""

    def __init__(self, policy_set: PolicySet) -> None:
        super().__init__()
        self.policy_set = policy_set

    def _decide(self, src: Side, dst: Side, port: int | None, protocol: str) -> Decision:
        source, destination = peer_of(src, "src"), peer_of(dst, "dst")
        if protocol.startswith("ICMP"):
            verdict = evaluate(self.policy_set, source, destination, None, protocol, icmp_type=port)
        else:
            verdict = evaluate(self.policy_set, source, destination, port, protocol)
        if verdict.self_traffic:
            return Decision(self_traffic=True)
        egress = verdict.egress if src.is_pod else None
        ingress = verdict.ingress if dst.is_pod else None
        for side, other in ((egress, dst), (ingress, src)):
            if side is None:
                continue
            if side.status == NOT_EVALUATED:
                return Decision(reason=ENGINE_REASONS.get(side.reason or "", "undecidable-rule"))
            if not other.is_pod and other.name == UNKNOWN and side.policy is not None:
                return Decision(reason="no-labels")  # a pod known by its identity only: a rule may have matched it
        return Decision(egress, ingress)

    @staticmethod
    def deny_label(side: SideResult) -> str:
        return side.label or ""

    @staticmethod
    def allow_label(side: SideResult) -> str:
        return side.label or DEFAULT_ALLOW
