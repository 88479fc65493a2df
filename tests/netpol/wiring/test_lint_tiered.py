"""`lint` on Calico policy sets: each Calico finding on a case made for it, through the command, and
`unevaluated-kind` for policy-like kinds no engine reads (text and --json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.cli import main

TIER = """\
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
PASS_REST = """\
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.pass-rest}
spec: {tier: security, order: 1000, selector: all(), ingress: [{action: Pass}]}
"""
TIE = """\
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.allow-web}
spec:
  tier: security
  order: 10
  selector: app == 'db'
  ingress: [{action: Allow, source: {selector: app == 'web'}}, {action: Pass}]
"""
SHADOWED = """\
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: shadow, namespace: shop}
spec:
  selector: app == 'api'
  ingress:
  - {action: Allow}
  - {action: Deny, source: {selector: app == 'web'}}
"""


def lint_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *extra: str) -> tuple[int, list, str]:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    code = main(["lint", "--policies", str(path), "--json", *extra])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else [], captured.err


def checks(findings: list[dict]) -> list[tuple[str, str]]:
    return [(f["check"], f["policy"]) for f in findings]


def test_tier_without_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, findings, _ = lint_json(tmp_path, capsys, TIER)
    assert code == 0  # warnings
    assert checks(findings) == [("tier-without-pass", "security.block-db")]
    assert findings[0]["severity"] == "warning"
    assert findings[0]["where"] == f"{tmp_path / 'p.yaml'}:6"
    assert lint_json(tmp_path, capsys, TIER + PASS_REST)[1] == []


def test_order_tie(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, findings, _ = lint_json(tmp_path, capsys, TIER + TIE)
    assert ("order-tie", "security.block-db") in checks(findings)
    assert lint_json(tmp_path, capsys, TIER + TIE.replace("order: 10", "order: 11") + PASS_REST)[1] == []


def test_shadowed_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, findings, _ = lint_json(tmp_path, capsys, SHADOWED.removeprefix("---\n"))
    assert checks(findings) == [("shadowed-rule", "shop/shadow")]
    assert "rule" in findings[0]["message"]


def test_text_output_and_kubernetes_checks_still_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    knp = """\
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ns-name, namespace: shop}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {matchLabels: {name: ops}}}]}]
"""
    path = tmp_path / "p.yaml"
    path.write_text(TIER + knp)
    assert main(["lint", "--policies", str(path)]) == 0
    captured = capsys.readouterr()
    assert "warning [tier-without-pass] security.block-db" in captured.out
    assert "warning [namespace-name-label] shop/ns-name" in captured.out
    assert "2 policies: 2 warning" in captured.err  # the Tier is no policy


UNKNOWN = """\
apiVersion: example.io/v1
kind: FancyNetworkPolicy
metadata: {name: f, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""


@pytest.mark.parametrize("cni", [[], ["--cni", "calico"], ["--cni", "cilium"]])
def test_unevaluated_kind_is_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str], cni: list[str]) -> None:
    code, findings, err = lint_json(tmp_path, capsys, UNKNOWN, *cni)
    assert code == 0
    unevaluated = [f for f in findings if f["check"] == "unevaluated-kind"]
    assert [(f["policy"], f["severity"], f["where"]) for f in unevaluated] == [
        ("shop/f", "warning", f"{tmp_path / 'p.yaml'}:1")]
    assert "FancyNetworkPolicy (example.io/v1) is not evaluated" in unevaluated[0]["message"]
    assert "(document 1 shop/f): kind FancyNetworkPolicy" in err
    assert "warning: not policies, ignored: 1 ConfigMap" in err


def test_only_unevaluated_kinds_still_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, findings, _ = lint_json(tmp_path, capsys, UNKNOWN.split("---")[0])
    assert code == 0 and checks(findings) == [("unevaluated-kind", "shop/f")]
    code, findings, err = lint_json(tmp_path, capsys, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    assert code == 2 and "no NetworkPolicy found" in err


def test_mixed_cni_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cilium = ("---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: c, namespace: shop}\n"
              "spec: {endpointSelector: {}}\n")
    code, _, err = lint_json(tmp_path, capsys, TIER + cilium)
    assert code == 2 and "a policy set is for one CNI" in err


def test_a_calico_policy_acknowledges_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    annotated = TIER.replace("metadata: {name: security.block-db}",
                             "metadata:\n  name: security.block-db\n"
                             "  annotations: {netpol-exporter.io/lint-ignore: tier-without-pass}")
    code, findings, _ = lint_json(tmp_path, capsys, annotated)
    assert code == 0
    assert [(f["check"], f["suppressed"]) for f in findings] == [("tier-without-pass", True)]
    path = tmp_path / "p.yaml"
    assert main(["lint", "--policies", str(path)]) == 0
    captured = capsys.readouterr()
    assert "tier-without-pass" not in captured.out and "(1 suppressed)" in captured.err


def test_a_networkpolicy_of_another_api_version_stays_invalid(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The Kubernetes path is unchanged: not a skipped kind, an invalid object (exit 2)."""
    old_api = UNKNOWN.replace("networking.k8s.io/v1", "networking.k8s.io/v1beta1")
    code, findings, _ = lint_json(tmp_path, capsys, old_api)
    assert code == 2
    assert ("invalid", "shop/deny") in checks(findings)
