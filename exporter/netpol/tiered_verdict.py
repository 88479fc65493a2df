"""`check` through the tiered engine (Calico kinds, AdminNetworkPolicies): a probe's verdict, its
description and its JSON, shaped as the NetworkPolicy engine's `Verdict` for the command."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.netpol.calico import ALLOWED, DENIED, FlowVerdict, Peer, PolicySet, SideResult, evaluate
from exporter.netpol.evaluator import ALLOW, DENY, UNDECIDED, Endpoint

ICMP_PROTOCOLS = ("ICMPv4", "ICMPv6")


@dataclass(frozen=True)
class TieredVerdict:
    verdict: FlowVerdict

    @property
    def egress(self) -> SideResult | None:
        return self.verdict.egress

    @property
    def ingress(self) -> SideResult | None:
        return self.verdict.ingress

    @property
    def self_traffic(self) -> bool:
        return self.verdict.self_traffic

    @property
    def outcome(self) -> str:
        allowed = self.verdict.allowed
        return UNDECIDED if allowed is None else ALLOW if allowed else DENY


def peer_of(endpoint: Endpoint, service_account: str | None = None) -> Peer:
    """The tiered engine's view of a model endpoint: a pod, the node (`host`), or an address."""
    if endpoint.namespace is None and endpoint.entity in ("host", "remote-node"):
        return Peer.host(endpoint.key, str(endpoint.ip) if endpoint.ip else None)
    return Peer.from_endpoint(endpoint, service_account)


def evaluate_tiered(policy_set: PolicySet, src: Peer, dst: Peer, port: int | None, protocol: str) -> TieredVerdict:
    """`port` is the ICMP type for an ICMP probe, as in the model file."""
    if protocol in ICMP_PROTOCOLS:
        return TieredVerdict(evaluate(policy_set, src, dst, None, protocol, icmp_type=port))
    return TieredVerdict(evaluate(policy_set, src, dst, port, protocol))


def _where(side: SideResult) -> str:
    if side.rule == -1:
        return f"end of tier {side.tier}"
    return f"tier {side.tier}, rule {side.rule}"


def describe_tiered_side(side: SideResult) -> str:
    passed = f"; passed on by {', '.join(side.passed)}" if side.passed else ""
    if side.status == ALLOWED:
        if side.policy is None:
            return "allowed: no tier decides, the namespace profile allows" + passed
        return f"allowed by {side.policy} ({_where(side)})" + passed
    if side.status == DENIED:
        return f"denied by {side.policy} ({_where(side)})" + passed
    at = f" at {side.policy} ({_where(side) if side.rule is not None else 'tier ' + str(side.tier)})" \
        if side.policy else ""
    return f"undecided: not evaluated offline ({side.reason}){at}" + passed


def tiered_side_json(side: SideResult) -> dict[str, Any]:
    return {
        "outcome": UNDECIDED if side.status not in (ALLOWED, DENIED) else side.status,
        "status": side.status,
        "policy": side.label,
        "tier": side.tier,
        "rule": side.rule,
        "reason": side.reason,
        "passed": list(side.passed),
    }
