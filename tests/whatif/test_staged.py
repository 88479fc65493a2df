"""`whatif` with Calico policies: `--staged` enforces the staged ones against recorded Calico flows;
`--cni`, `--namespace`; hand-worked expectations (see the policy comments)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.cli import main

from .flows import API, CLIENT, DB, WEB, calico, write_lines

POLICIES = """\
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
# enforced: TCP/443 into any pod is denied, everything else passes on (to the profile's allow)
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.block-client}
spec:
  tier: security
  order: 10
  selector: all()
  types: [Ingress]
  ingress:
  - {action: Deny, protocol: TCP, destination: {ports: [443]}}
  - {action: Pass}
---
# staged: remove block-client
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: security.block-client}
spec: {tier: security, stagedAction: Delete, selector: all()}
---
# staged: db takes TCP/5432 from api only, denies the rest
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: security.db-lockdown, namespace: shop}
spec:
  tier: security
  order: 20
  selector: app == 'db'
  stagedAction: Set
  ingress:
  - {action: Allow, protocol: TCP, source: {selector: app == 'api'}, destination: {ports: [5432]}}
  - {action: Deny}
"""


def recorded(tmp_path: Path) -> str:
    return write_lines(tmp_path / "flows.log", [
        calico(WEB, API, reporter="src", action="allow", started=5, port=8080),
        calico(WEB, API, reporter="dst", action="allow", started=5, port=8080),
        calico(API, DB, reporter="src", action="allow", started=2, port=5432),
        calico(API, DB, reporter="dst", action="allow", started=2, port=5432),
        calico(WEB, DB, reporter="src", action="allow", started=3, port=5432),
        calico(WEB, DB, reporter="dst", action="allow", started=3, port=5432),
        calico(CLIENT, WEB, reporter="dst", action="deny", started=7, port=443),
    ])


def whatif(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = main(["whatif", "--json", *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else {}, captured.err


def rows(result: dict, category: str) -> list[tuple]:
    return [(r["source"], r["destination"], r["destination_port"], r["connections"], r["side"], r["policy"])
            for r in result[category]]


@pytest.fixture
def policies(tmp_path: Path) -> str:
    path = tmp_path / "policies.yaml"
    path.write_text(POLICIES)
    return str(path)


def test_staged_policies_enforce_nothing_without_the_switch(tmp_path: Path, policies: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, result, err = whatif(capsys, "--format", "calico", "--policies", policies, recorded(tmp_path))
    assert code == 0 and result == {"breaks": [], "opens": [], "not_evaluated": []}
    assert "note: 2 staged policies in --policies enforce nothing (--staged enforces them)" in err


def test_staged_set_and_delete_against_recorded_flows(tmp_path: Path, policies: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, result, _ = whatif(capsys, "--format", "calico", "--policies", policies, "--staged", recorded(tmp_path))
    assert code == 1
    assert rows(result, "breaks") == [("shop/web", "shop/db", "5432", 3, "ingress", "shop/security.db-lockdown")]
    assert rows(result, "opens") == [("world", "shop/web", "443", 7, "ingress", "default-allow")]
    assert result["not_evaluated"] == []


def test_staged_against_a_baseline(tmp_path: Path, policies: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Today's verdict from the same file (staged policies not enforced) instead of the records."""
    code, result, _ = whatif(capsys, "--format", "calico", "--baseline", policies, "--policies", policies,
                             "--staged", recorded(tmp_path))
    assert code == 1
    assert [r[:2] for r in rows(result, "breaks")] == [("shop/web", "shop/db")]
    assert [r[:2] for r in rows(result, "opens")] == [("world", "shop/web")]


def test_staged_needs_calico_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    knp = tmp_path / "k.yaml"
    knp.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a, namespace: shop}\n"
                   "spec: {podSelector: {}}\n")
    code, _, err = whatif(capsys, "--format", "calico", "--policies", str(knp), "--staged", recorded(tmp_path))
    assert code == 2 and "--staged: staged policies are Calico's" in err
    # --cni calico: the Kubernetes policy in Calico's default tier, no staged policy: a warning
    code, result, err = whatif(capsys, "--format", "calico", "--policies", str(knp), "--staged", "--cni", "calico",
                               recorded(tmp_path))
    assert code == 1 and "--policies holds no staged policy" in err
    assert {r[5] for r in rows(result, "breaks")} == {"shop/a"}  # isolated, end of the default tier


def test_namespace_for_policies_without_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deny_db = tmp_path / "deny.yaml"
    deny_db.write_text("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: deny-db}\n"
                       "spec: {selector: app == 'db', ingress: [{action: Deny}]}\n")
    code, result, _ = whatif(capsys, "--format", "calico", "--policies", str(deny_db), recorded(tmp_path))
    assert code == 0  # in namespace default: selects nothing in shop
    code, result, _ = whatif(capsys, "--format", "calico", "--policies", str(deny_db), "--namespace", "shop",
                             recorded(tmp_path))
    assert code == 1 and {r[5] for r in rows(result, "breaks")} == {"shop/deny-db"}


def test_calico_and_cilium_policies_together_are_an_error(tmp_path: Path, policies: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    cnp = tmp_path / "c.yaml"
    cnp.write_text("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: c, namespace: shop}\n"
                   "spec: {endpointSelector: {}}\n")
    code, _, err = whatif(capsys, "--format", "calico", "--baseline", str(cnp), "--policies", policies,
                          recorded(tmp_path))
    assert code == 2 and "a policy set is for one CNI" in err


def test_admin_network_policy_through_whatif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An ANP alone (no --cni): upstream order; its denial is named as Calico's flows name it."""
    anp = tmp_path / "anp.yaml"
    anp.write_text("""\
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: protect-db}
spec:
  priority: 5
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: db}}}}
  ingress:
  - {name: api, action: Allow, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: api}}}}]}
  - {name: rest, action: Deny, from: [{namespaces: {}}]}
""")
    code, result, _ = whatif(capsys, "--format", "calico", "--policies", str(anp), recorded(tmp_path))
    assert code == 1
    assert rows(result, "breaks") == [("shop/web", "shop/db", "5432", 3, "ingress", "adminnetworkpolicy.protect-db")]


def test_calico_peers_outside_the_pods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A NetworkSet address and a node: nets match their addresses; a selector cannot be matched
    against a node's labels (not in the records): not evaluated, `reserved-peer`."""
    netset = json.loads(calico(CLIENT, WEB, reporter="dst", action="allow", started=2, port=443))
    netset.update(source_type="ns", source_name="partners", source_name_aggr="partners", source_namespace="shop")
    host = json.loads(calico(CLIENT, WEB, reporter="dst", action="allow", started=1, port=443))
    host.update(source_type="hep", source_ip="10.0.0.3", source_name_aggr="node-a")
    flows = write_lines(tmp_path / "flows.log", [json.dumps(netset).encode(), json.dumps(host).encode()])
    policy = tmp_path / "p.yaml"
    policy.write_text("""\
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: web-in, namespace: shop}
spec:
  selector: app == 'web'
  ingress:
  - {action: Allow, source: {nets: [203.0.113.0/24]}}
  - {action: Allow, source: {selector: role == 'node'}}
""")
    code, result, _ = whatif(capsys, "--format", "calico", "--policies", str(policy), flows)
    assert code == 0 and result["breaks"] == []
    assert [(r["source"], r["reason"]) for r in result["not_evaluated"]] == [("host", "reserved-peer")]
    policy.write_text(policy.read_text().replace("selector: role == 'node'", "nets: [10.0.0.0/24]"))
    code, result, _ = whatif(capsys, "--format", "calico", "--policies", str(policy), flows)
    assert code == 0 and result == {"breaks": [], "opens": [], "not_evaluated": []}
