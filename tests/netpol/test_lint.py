"""`netpol-exporter lint`: each check, suppression, exit codes, and the seed's known mistakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.cli import main
from exporter.netpol.lint import Finding, lint
from exporter.netpol.loading import load_policies

from .helpers import policy, seed_policies

KUBE_DNS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
ALLOW_DNS = policy(
    "allow-dns",
    {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [KUBE_DNS_PEER], "ports": [{"port": 53, "protocol": "UDP"}]}],
    },
)


def run_lint(tmp_path: Path, *objs: dict[str, Any]) -> list[Finding]:
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump_all(objs))
    return lint(load_policies([path]))


def line_at(where: str) -> str:
    file, _, line = where.rpartition(":")
    return Path(file).read_text().splitlines()[int(line) - 1]


def checks(findings: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.check, f.policy, f.path) for f in findings if not f.suppressed]


def test_or_peers(tmp_path: Path) -> None:
    ns_only = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    pods = {"podSelector": {"matchLabels": {"app": "prometheus"}}}
    found = run_lint(tmp_path, policy("p", {"podSelector": {}, "ingress": [{"from": [ns_only, pods]}]}))
    assert checks(found) == [("or-peers", "app/p", "spec.ingress[0].from[1]")]
    assert found[0].severity == "error" and "OR'ed" in found[0].message
    assert "podSelector" in line_at(found[0].where)  # file:line of the podSelector-only entry
    assert run_lint(tmp_path, policy("p", {"podSelector": {}, "ingress": [{"from": [{**ns_only, **pods}]}]})) == []


def test_namespace_name_label(tmp_path: Path) -> None:
    peer = {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    found = run_lint(tmp_path, policy("p", {"podSelector": {}, "ingress": [{"from": [peer]}]}))
    assert checks(found) == [("namespace-name-label", "app/p", "spec.ingress[0].from[0].namespaceSelector")]
    assert "kubernetes.io/metadata.name: monitoring" in found[0].message
    expr = {"namespaceSelector": {"matchExpressions": [{"key": "name", "operator": "Exists"}]}}
    assert (
        checks(run_lint(tmp_path, policy("p", {"podSelector": {}, "ingress": [{"from": [expr]}]})))[0][0]
        == "namespace-name-label"
    )


def test_no_dns(tmp_path: Path) -> None:
    isolated = policy("web", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"]})
    assert checks(run_lint(tmp_path, isolated)) == [("no-dns", "app/web", "spec.policyTypes")]
    assert run_lint(tmp_path, isolated, ALLOW_DNS) == []
    # DNS in another namespace does not count.
    assert checks(
        run_lint(tmp_path, isolated, {**ALLOW_DNS, "metadata": {"name": "allow-dns", "namespace": "other"}})
    ) == [("no-dns", "app/web", "spec.policyTypes")]
    # A DNS rule whose peer is a `name` namespace label reaches no kube-dns pod.
    by_name = policy(
        "dns",
        {
            "podSelector": {},
            "egress": [
                {
                    "to": [{"namespaceSelector": {"matchLabels": {"name": "kube-system"}}}],
                    "ports": [{"port": 53, "protocol": "UDP"}],
                }
            ],
        },
    )
    assert ("no-dns", "app/dns", "spec.egress") in checks(run_lint(tmp_path, by_name))
    # TCP-only DNS is not enough; a rule without ports is.
    tcp_only = policy("dns", {"podSelector": {}, "egress": [{"to": [KUBE_DNS_PEER], "ports": [{"port": 53}]}]})
    assert ("no-dns", "app/dns", "spec.egress") in checks(run_lint(tmp_path, tcp_only))
    any_port = policy("dns", {"podSelector": {}, "egress": [{"to": [KUBE_DNS_PEER]}]})
    assert run_lint(tmp_path, any_port) == []


def test_shadowed_rules(tmp_path: Path) -> None:
    wide = {"from": [{"namespaceSelector": {}}], "ports": [{"port": 80}, {"port": 443}]}
    narrow = {
        "from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {"matchLabels": {"app": "x"}}}],
        "ports": [{"port": 80}],
    }
    other_port = {"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}], "ports": [{"port": 8080}]}
    found = run_lint(tmp_path, policy("p", {"podSelector": {}, "ingress": [narrow, wide, other_port]}))
    assert checks(found) == [("shadowed-rule", "app/p", "spec.ingress[0]")]
    assert "spec.ingress[1]" in found[0].message
    # Identical rules: only the later one is reported.
    assert checks(run_lint(tmp_path, policy("p", {"podSelector": {}, "ingress": [narrow, narrow]}))) == [
        ("shadowed-rule", "app/p", "spec.ingress[1]")
    ]
    # Across policies: a namespace-wide policy's rule covers a narrower policy's rule; not the reverse.
    broad = policy("broad", {"podSelector": {}, "ingress": [wide]})
    specific = policy("specific", {"podSelector": {"matchLabels": {"app": "web"}}, "ingress": [narrow]})
    found = run_lint(tmp_path, broad, specific)
    assert checks(found) == [("shadowed-rule", "app/specific", "spec.ingress[0]")]
    assert "app/broad spec.ingress[0]" in found[0].message
    # Port ranges and ipBlocks.
    ranged = policy(
        "r", {"podSelector": {}, "ingress": [{"ports": [{"port": 1000, "endPort": 2000}]}, {"ports": [{"port": 1500}]}]}
    )
    assert ("shadowed-rule", "app/r", "spec.ingress[1]") in checks(run_lint(tmp_path, ranged))
    blocks = policy(
        "b",
        {
            "podSelector": {},
            "egress": [
                {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]},
                {"to": [{"ipBlock": {"cidr": "10.2.0.0/16"}}]},
                {"to": [{"ipBlock": {"cidr": "10.1.2.0/24"}}]},
            ],
        },
    )
    shadowed = [c for c in checks(run_lint(tmp_path, blocks)) if c[0] == "shadowed-rule"]
    assert shadowed == [("shadowed-rule", "app/b", "spec.egress[1]")]


def test_open_peers(tmp_path: Path) -> None:
    found = run_lint(
        tmp_path,
        policy(
            "p", {"podSelector": {}, "ingress": [{"from": [], "ports": [{"port": 7233}]}, {"ports": [{"port": 80}]}]}
        ),
    )
    assert checks(found) == [
        ("open-peers", "app/p", "spec.ingress[0].from"),
        ("open-peers", "app/p", "spec.ingress[1]"),
    ]
    assert "`from: []`" in found[0].message and "TCP/7233" in found[0].message
    assert "no `from`" in found[1].message


def test_ignored_rules(tmp_path: Path) -> None:
    found = run_lint(
        tmp_path,
        policy(
            "p", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [], "egress": [{"to": [KUBE_DNS_PEER]}]}
        ),
    )
    assert checks(found) == [("ignored-rules", "app/p", "spec.egress")]


def test_annotation_suppresses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = policy("p", {"podSelector": {}, "ingress": [{"from": [], "ports": [{"port": 443}]}]})
    obj["metadata"]["annotations"] = {"netpol-exporter.io/lint-ignore": "open-peers"}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(obj))
    assert main(["lint", "--policies", str(path)]) == 0
    captured = capsys.readouterr()
    assert "open-peers" not in captured.out and "1 suppressed" in captured.err
    assert main(["lint", "--policies", str(path), "--show-suppressed"]) == 0
    assert "warning (suppressed) [open-peers]" in capsys.readouterr().out


def test_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    warn = tmp_path / "warn.yaml"
    warn.write_text(yaml.safe_dump(policy("p", {"podSelector": {}, "ingress": [{"ports": [{"port": 1}]}]})))
    assert main(["lint", "--policies", str(warn)]) == 0  # warnings only
    err = tmp_path / "err.yaml"
    peers = [{"namespaceSelector": {}}, {"podSelector": {}}]
    err.write_text(yaml.safe_dump(policy("p", {"podSelector": {}, "ingress": [{"from": peers}]})))
    capsys.readouterr()
    assert main(["lint", "--policies", str(err), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc[0]["check"] == "or-peers" and doc[0]["severity"] == "error"
    assert doc[0]["where"].startswith(str(err)) and "podSelector" in line_at(doc[0]["where"])
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(policy("p", {"podSelector": {}, "ingress": [{"from": [{}]}]})))
    assert main(["lint", "--policies", str(bad)]) == 2
    assert "[invalid] app/p spec.ingress[0].from[0]: must specify a peer" in capsys.readouterr().out
    assert main(["lint", "--policies", str(tmp_path / "missing")]) == 2


def test_the_seeds_known_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = seed_policies(tmp_path)
    findings = [f for f in lint(load_policies([path])) if not f.suppressed]
    by_check: dict[str, set[tuple[str, str]]] = {}
    for f in findings:
        by_check.setdefault(f.check, set()).add((f.policy, f.path))
    # The "monitoring access" rules: namespaceSelector OR podSelector where AND was meant.
    assert by_check["or-peers"] == {
        ("temporal/temporal-frontend-policy", "spec.ingress[4].from[1]"),
        ("temporal/temporal-history-policy", "spec.ingress[3].from[1]"),
        ("temporal/temporal-matching-policy", "spec.ingress[3].from[1]"),
        ("temporal/temporal-worker-policy", "spec.ingress[1].from[1]"),
        ("temporal-workers/temporal-application-workers-policy", "spec.ingress[0].from[1]"),
    }
    # 31 of the seed's 34 namespaceSelectors select on `name` (the others: `{}` and `environment: production`).
    assert len(by_check["namespace-name-label"]) == 31
    # Egress-isolated pods without DNS: the databases, the ingress controller, production.
    assert {p for p, _ in by_check["no-dns"]} == {
        "databases/postgresql-policy",
        "databases/elasticsearch-policy",
        "ingress-nginx/ingress-controller-policy",
        "temporal-production/prod-strict-policy",
    }
    # `from: []` on 7233 makes the frontend's namespace rules dead; kube-system DNS rule shadowed by `to: []`.
    assert {
        ("temporal/temporal-frontend-policy", "spec.ingress[0]"),
        ("temporal/temporal-frontend-policy", "spec.ingress[2]"),
        ("temporal/temporal-frontend-policy", "spec.ingress[3]"),
        ("temporal/allow-dns-access", "spec.egress[1]"),
        ("temporal-monitoring/grafana-policy", "spec.ingress[0]"),
    } == by_check["shadowed-rule"]
    assert ("temporal/temporal-frontend-policy", "spec.ingress[1].from") in by_check["open-peers"]
    assert main(["lint", "--policies", str(path)]) == 1
    assert "5 error" in capsys.readouterr().err
