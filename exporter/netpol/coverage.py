"""Syntactic "covers" relations between selectors, peers, ports and rules (for lint).

`a covers b` means everything `b` matches, `a` matches too. The relations are sound (never claim
coverage that does not hold) but not complete: when in doubt they answer False.
"""

from __future__ import annotations

from exporter.netpol.labels import LabelSelector, Requirement
from exporter.netpol.policy import PolicyPeer, PolicyPort, Rule

METADATA_NAME = "kubernetes.io/metadata.name"


def _implied(req: Requirement, by: tuple[Requirement, ...]) -> bool:
    for other in by:
        if other.key != req.key:
            continue
        if req.operator == "In" and other.operator == "In" and other.values <= req.values:
            return True
        if req.operator == "Exists" and other.operator in ("In", "Exists"):
            return True
        if req.operator == "NotIn" and (
            (other.operator == "In" and not other.values & req.values)
            or (other.operator == "NotIn" and other.values >= req.values)
            or other.operator == "DoesNotExist"
        ):
            return True
        if req.operator == "DoesNotExist" and other.operator == "DoesNotExist":
            return True
    return False


def selector_covers(a: LabelSelector, b: LabelSelector) -> bool:
    return all(_implied(r, b.requirements) for r in a.requirements)


def _namespace_scope(peer: PolicyPeer, policy_namespace: str) -> LabelSelector:
    if peer.namespace_selector is not None:
        return peer.namespace_selector
    return LabelSelector((Requirement(METADATA_NAME, "In", frozenset([policy_namespace])),))


def peer_covers(a: PolicyPeer, a_ns: str, b: PolicyPeer, b_ns: str) -> bool:
    if a.ip_block is not None or b.ip_block is not None:
        if a.ip_block is None or b.ip_block is None:
            return False
        outer, inner = a.ip_block, b.ip_block
        if inner.network.version != outer.network.version or not inner.network.subnet_of(outer.network):  # type: ignore[arg-type]
            return False
        return all(
            not exc.overlaps(inner.network) or any(exc.subnet_of(e) for e in inner.excepts)  # type: ignore[arg-type]
            for exc in outer.excepts
        )
    if not selector_covers(_namespace_scope(a, a_ns), _namespace_scope(b, b_ns)):
        return False
    if a.pod_selector is None:
        return True
    return selector_covers(a.pod_selector, b.pod_selector or LabelSelector())


def port_covers(a: PolicyPort, b: PolicyPort) -> bool:
    if a.protocol != b.protocol:
        return False
    if a.port is None:
        return True
    if b.port is None:
        return False
    if isinstance(a.port, str) or isinstance(b.port, str):
        return a.port == b.port
    return a.port <= b.port and (b.end_port or b.port) <= (a.end_port or a.port)


def rule_covers(a: Rule, a_ns: str, b: Rule, b_ns: str) -> bool:
    """Whether rule `a` allows everything rule `b` allows (same direction assumed)."""
    if a.peers is not None:
        if b.peers is None:
            return False
        if not all(any(peer_covers(pa, a_ns, pb, b_ns) for pa in a.peers) for pb in b.peers):
            return False
    if a.ports is None:
        return True
    if b.ports is None:
        return False
    return all(any(port_covers(pa, pb) for pa in a.ports) for pb in b.ports)
