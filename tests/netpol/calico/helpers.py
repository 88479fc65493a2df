"""Shared helpers: hand-written policy documents → verdicts."""

from __future__ import annotations

import yaml

from exporter.netpol.calico import FlowVerdict, Peer, PolicySet, evaluate, load_policies


def load(text: str, cni: str = "calico") -> PolicySet:
    return load_policies(list(yaml.safe_load_all(text)), cni=cni)


def pod(namespace: str, name: str, **labels: str) -> Peer:
    return Peer.pod(namespace, name, labels, {"team": namespace}, ip=None)


def flow(policies: PolicySet | str, src: Peer, dst: Peer, port: int | None = 80, protocol: str = "TCP",
         **icmp: int) -> FlowVerdict:
    policy_set = load(policies) if isinstance(policies, str) else policies
    return evaluate(policy_set, src, dst, port, protocol, icmp.get("icmp_type"), icmp.get("icmp_code"))


def side(verdict: FlowVerdict, direction: str) -> tuple[str, str | None, int | None]:
    """(status, policy label, rule index) of one side."""
    result = verdict.ingress if direction == "ingress" else verdict.egress
    assert result is not None
    return (result.status, result.label, result.rule)
