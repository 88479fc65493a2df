"""Kubernetes NetworkPolicies through the tiered engine (as Calico converts and enforces them) agree
with the NetworkPolicy engine on every pod pair of the Temporal model, for the shipped policies."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from exporter.netpol.calico import Peer, evaluate, load_policies
from exporter.netpol.evaluator import Endpoint
from exporter.netpol.loading import documents
from exporter.netpol.modelfile import load_model
from exporter.netpol.policy import parse_policy

ROOT = Path(__file__).resolve().parents[3]
POLICIES = ROOT / "deploy" / "network-policies" / "base"
MODEL = ROOT / "tests" / "netpol" / "models" / "temporal.model.yaml"
KIND = "NetworkPolicy"
WORLD = Endpoint(key="203.0.113.5", namespace=None, ip=ipaddress.ip_address("203.0.113.5"))


@pytest.mark.parametrize("cni", ["kubernetes", "calico"])
def test_same_verdicts_as_the_networkpolicy_engine(cni: str) -> None:
    model = load_model(MODEL)
    cluster = model.cluster
    docs = documents([POLICIES])
    cluster.policies = [parse_policy(d.obj) for d in docs if isinstance(d.obj, dict) and d.obj.get("kind") == KIND]
    tiered = load_policies([d.obj for d in docs], cni=cni)
    assert len(tiered.policies) == len(cluster.policies) > 5
    endpoints = [*cluster.pods.values(), WORLD]
    cases = {(53, "UDP"), (53, "TCP"), (443, "TCP"), (1234, "TCP"), (9000, "SCTP")}
    compared = unknown = denied = 0
    for src in endpoints:
        for dst in endpoints:
            if src is dst is WORLD:
                continue
            ports = cases | {(cp.port, cp.protocol) for cp in dst.ports}
            for port, protocol in sorted(ports):
                expected = cluster.evaluate(src, dst, port, protocol).allowed
                got = evaluate(tiered, Peer.from_endpoint(src), Peer.from_endpoint(dst), port, protocol)
                if got.allowed is None:
                    # Only named ports on a pod whose container ports the model does not list.
                    reasons = {s.reason for s in (got.egress, got.ingress) if s is not None and s.reason}
                    assert reasons == {"named-port"}, (src.key, dst.key, port, protocol)
                    unknown += 1
                    continue
                assert got.allowed is expected, (src.key, dst.key, port, protocol, got)
                compared += 1
                denied += not expected
    assert compared > 1000 and denied > 500 and compared - denied > 50
    assert unknown < compared / 10
