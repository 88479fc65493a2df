"""Cilium policies in a proposal: FQDN and L7 rules make a connection not evaluated, never guessed.

Runs once the engine reads CiliumNetworkPolicies (exporter.netpol.cilium); skipped before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.cli import main

from .flows import API, WEB, World, hubble, write_lines

pytest.importorskip("exporter.netpol.cilium", reason="the engine does not read CiliumNetworkPolicies yet")

PROPOSAL = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: web-egress, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: web}}
  egress:
  - toFQDNs: [{matchName: api.example.com}]
    toPorts: [{ports: [{port: "443", protocol: TCP}]}]
  - toEndpoints: [{matchLabels: {app: api}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: api-ingress, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: api}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: web}}]
    toPorts:
    - ports: [{port: "8080", protocol: TCP}]
      rules: {http: [{method: GET, path: "/v1/.*"}]}
"""


def test_fqdn_and_l7_rules_are_not_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = tmp_path / "cnp.yaml"
    policies.write_text(PROPOSAL)
    lines = [hubble(WEB, World("198.51.100.7"), 1.0, sport=40001, dport=443),
             hubble(WEB, API, 2.0, sport=40002, dport=8080)]
    code = main(["whatif", "--format", "hubble", "--json", "--policies", str(policies),
                 write_lines(tmp_path / "f.jsonl", lines)])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["breaks"] == []
    assert sorted((r["destination"], r["reason"]) for r in result["not_evaluated"]) == [
        ("shop/api", "l7-rule"), ("world", "fqdn-rule")]


DEMO_POLICIES = Path(__file__).resolve().parents[2] / "exporter" / "data" / "demo-policies"


@pytest.mark.skipif(not DEMO_POLICIES.is_dir(), reason="the demo does not ship its policies yet")
def test_the_demo_traffic_is_what_the_demo_policies_decide(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo's flows record its policies' verdicts: replayed through them, nothing changes."""
    from exporter.whatif.demo_flows import lines

    flows = write_lines(tmp_path / "demo.jsonl", lines())
    code = main(["whatif", "--format", "hubble", "--json", "--policies", str(DEMO_POLICIES), flows])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result == {"breaks": [], "opens": [], "not_evaluated": []}
