"""Calico-specific findings, each on a case made for it, and silence on the cases that are fine."""

from __future__ import annotations

from exporter.netpol.calico.findings import calico_findings
from tests.netpol.calico.helpers import load

TIER = """
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.block-db}
spec:
  tier: security
  order: 10
  selector: app == 'db'
  ingress: [{action: Deny, source: {namespaceSelector: env == 'dev'}}]
"""

TRAILING_PASS = """
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.pass-rest}
spec: {tier: security, order: 1000, selector: all(), ingress: [{action: Pass}]}
"""


def checks(text: str) -> list[tuple[str, str]]:
    return [(f.check, f.policy) for f in calico_findings(load(text))]


def test_tier_without_trailing_pass() -> None:
    findings = calico_findings(load(TIER))
    assert [(f.check, f.policy) for f in findings] == [("tier-without-pass", "security.block-db")]
    assert "tier security (defaultAction Deny) drops the ingress traffic" in findings[0].message
    assert findings[0].source == "document 2 (GlobalNetworkPolicy security.block-db)"
    assert checks(TIER + TRAILING_PASS) == []
    assert checks(TIER.replace("spec: {order: 100}", "spec: {order: 100, defaultAction: Pass}")) == []
    # A namespaced catch-all only covers its namespace: the global policy stays open.
    namespaced_pass = TRAILING_PASS.replace("GlobalNetworkPolicy", "NetworkPolicy").replace(
        "name: security.pass-rest}", "name: security.pass-rest, namespace: data}")
    assert checks(TIER + namespaced_pass) == [("tier-without-pass", "security.block-db")]


def test_order_ties_with_different_actions() -> None:
    tie = TRAILING_PASS.replace("order: 1000", "order: 10").replace("pass-rest", "allow-web").replace(
        "selector: all(), ingress: [{action: Pass}]",
        "selector: app == 'db', ingress: [{action: Allow, source: {selector: app == 'web'}}, {action: Pass}]")
    # allow-web sorts first by name, and its trailing Pass then decides every flow block-db would see.
    assert checks(TIER + tie) == [("order-tie", "security.block-db"), ("shadowed-rule", "security.block-db")]
    assert "security.allow-web and security.block-db in tier security both have order 10" in (
        calico_findings(load(TIER + tie))[0].message)
    assert checks(TIER + tie.replace("order: 10", "order: 11")) == []
    # Same actions: the order changes only which policy is named, not the verdict.
    same = TIER + TRAILING_PASS + "---" + TIER.split("---", 1)[1].replace("block-db", "block-db-2")
    assert checks(same) == []


def test_kubernetes_policies_at_the_same_order_are_not_a_tie() -> None:
    knp = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a, namespace: data}
spec: {podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b, namespace: data}
spec: {podSelector: {}, ingress: [{ports: [{port: 80}]}]}
"""
    assert checks(knp) == []


def test_shadowed_rules() -> None:
    in_policy = """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: data}
spec:
  ingress:
  - {action: Allow, protocol: TCP, destination: {ports: [80]}}
  - {action: Deny, protocol: TCP, destination: {ports: [80]}}
  - {action: Log}
  - {action: Deny}
  - {action: Allow, source: {selector: app == 'x'}}
"""
    findings = calico_findings(load(in_policy))
    assert [f.message for f in findings] == [
        "ingress rule 1 of data/p never runs: rule 0 (Allow) matches the same flows first",
        "ingress rule 4 of data/p never runs: rule 3 (Deny) matches every flow first",
    ]
    across = in_policy.replace("spec:\n  ingress:", "spec:\n  order: 1\n  ingress:") + """
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: later, namespace: data}
spec: {order: 2, selector: app == 'db', ingress: [{action: Allow}]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: elsewhere, namespace: web}
spec: {order: 2, ingress: [{action: Allow}]}
"""
    assert checks(across) == [
        ("shadowed-rule", "data/p"), ("shadowed-rule", "data/p"), ("shadowed-rule", "data/later"),
    ]
    assert "data/p selects every endpoint it selects and its ingress rule 3 (Deny)" in (
        calico_findings(load(across))[2].message)
