"""Calico's policy model offline: tiers, ordered policies, Allow/Deny/Pass/Log, the selector language,
staged policies, network sets; Kubernetes NetworkPolicies and AdminNetworkPolicies as Calico (or
upstream) enforces them. See docs/calico-policies.md.

Public API:
    policy_set = load_policies(documents, cni="calico")        # PolicySetError on bad input
    verdict = evaluate(policy_set, src, dst, port, "TCP")       # Peer.pod(...), Peer.external(ip)
    verdict.egress / verdict.ingress -> SideResult(status, label, tier, rule, reason) or None
    policy_set.with_staged_enforced()                           # staged Set/Delete applied
"""

from exporter.netpol.calico.evaluate import ALLOWED, DENIED, NOT_EVALUATED, FlowVerdict, SideResult, evaluate
from exporter.netpol.calico.loader import PolicySetError, load_policies
from exporter.netpol.calico.model import Peer, PolicySet
from exporter.netpol.calico.selector import Selector, SelectorError, parse

__all__ = [
    "ALLOWED",
    "DENIED",
    "NOT_EVALUATED",
    "FlowVerdict",
    "Peer",
    "PolicySet",
    "PolicySetError",
    "Selector",
    "SelectorError",
    "SideResult",
    "evaluate",
    "load_policies",
    "parse",
]
