"""`check` through the tiered engine: hand-worked Calico and AdminNetworkPolicy models, end to end
through the command (every `expect` below was worked out by hand from Calico's documented rules)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.netpol.adminpolicy import KINDS
from exporter.netpol.policyinput import ADMIN_KINDS

CALICO_MODEL = """\
namespaces:
  shop: {team: a}
  ops: {team: ops}
pods:
- {name: web, namespace: shop, labels: {app: web, tier: front}, ip: 10.0.0.1, serviceAccount: web}
- {name: api, namespace: shop, labels: {app: api, env: prod}, ip: 10.0.0.2, ports: [{name: http, port: 8080}]}
- {name: db, namespace: shop, labels: {app: db, version: v1.2}, ip: 10.0.0.3}
- {name: legacy, namespace: shop, labels: {app: legacy}, ip: 10.0.0.4}
- {name: free, namespace: shop, labels: {app: free}, ip: 10.0.0.5}
- {name: cache, namespace: shop, labels: {app: cache}, ip: 10.0.0.6}
- {name: mon, namespace: ops, labels: {app: monitor}, ip: 10.0.1.1}
policies:
- apiVersion: projectcalico.org/v3
  kind: Tier
  metadata: {name: security}
  spec: {order: 100}
- apiVersion: projectcalico.org/v3
  kind: Tier
  metadata: {name: quarantine}
  spec: {order: 150}
- apiVersion: projectcalico.org/v3
  kind: Tier
  metadata: {name: platform}
  spec: {order: 200, defaultAction: Pass}
# security: everything passes on, except ingress from 203.0.113.0/24
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkPolicy
  metadata: {name: security.block-bad}
  spec:
    tier: security
    order: 10
    selector: all()
    types: [Ingress, Egress]
    ingress:
    - {action: Deny, source: {nets: [203.0.113.0/24]}}
    - {action: Pass}
    egress:
    - {action: Pass}
# quarantine selects legacy only: TCP 8000-8100 from web, the rest ends in the tier's Deny
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkPolicy
  metadata: {name: quarantine.q}
  spec:
    tier: quarantine
    selector: app == 'legacy'
    ingress:
    - {action: Log}
    - {action: Allow, protocol: TCP, source: {selector: app == 'web'}, destination: {ports: ["8000:8100"]}}
# platform (defaultAction Pass): the ops namespace reaches api; nothing else decided here
- apiVersion: projectcalico.org/v3
  kind: NetworkPolicy
  metadata: {name: platform.api-ops, namespace: shop}
  spec:
    tier: platform
    selector: app == 'api'
    ingress:
    - {action: Allow, source: {namespaceSelector: team == 'ops'}}
# default tier: a Kubernetes NetworkPolicy (order 1000) and a Calico policy with every selector operator
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: api-from-web, namespace: shop}
  spec:
    podSelector: {matchLabels: {app: api}}
    ingress:
    - from: [{podSelector: {matchLabels: {app: web}}}]
      ports: [{port: http}]
- apiVersion: projectcalico.org/v3
  kind: NetworkPolicy
  metadata: {name: db-in, namespace: shop}
  spec:
    order: 50
    selector: has(version) && version starts with 'v1' && app in {'db', 'cache'}
    ingress:
    - action: Allow
      source:
        selector: (tier not in {'back'} && !has(env) && app != 'api') && tier contains "ron" && tier ends with 'nt'
        serviceAccounts: {names: [web]}
    - action: Allow
      protocol: UDP
      source: {namespaceSelector: global() || team == 'ops', notSelector: app == 'other'}
      destination: {notPorts: ["1:52"], ports: ["53:60"]}
    - {action: Allow, protocol: ICMP, icmp: {type: 8}}
# notProtocol: anything but UDP
- apiVersion: projectcalico.org/v3
  kind: NetworkPolicy
  metadata: {name: cache-in, namespace: shop}
  spec:
    selector: app == 'cache'
    ingress: [{action: Allow, notProtocol: UDP}]
# staged: enforces nothing in check
- apiVersion: projectcalico.org/v3
  kind: StagedGlobalNetworkPolicy
  metadata: {name: security.staged-deny-all}
  spec: {tier: security, order: 1, selector: all(), ingress: [{action: Deny}], stagedAction: Set}
probes:
# security tier: Deny rule, else Pass on
- {from: 203.0.113.9, to: shop/free, port: 80, expect: deny}
# every tier skipped (security passes, others do not select free): the profile allows
- {from: shop/web, to: shop/free, port: 80, expect: allow}
# quarantine: range 8000:8100 allows; outside it, end of tier deny; the default tier never sees it
- {from: shop/web, to: shop/legacy, port: 8050, expect: allow}
- {from: shop/web, to: shop/legacy, port: 8100, expect: allow}
- {from: shop/web, to: shop/legacy, port: 8101, expect: deny}
- {from: shop/web, to: shop/legacy, port: 8050, protocol: UDP, expect: deny}
# platform allows ops → api at any port; web → api is passed on to the default tier (NetworkPolicy)
- {from: ops/mon, to: shop/api, port: 9999, expect: allow}
- {from: shop/web, to: shop/api, port: http, expect: allow}
- {from: shop/web, to: shop/api, port: 9090, expect: deny}
# selector operators and service accounts (db-in rule 0), UDP 53-60 minus 1-52 from ops (rule 1)
- {from: shop/web, to: shop/db, port: 5432, expect: allow}
- {from: shop/api, to: shop/db, port: 5432, expect: deny}
- {from: ops/mon, to: shop/db, port: 53, protocol: UDP, expect: allow}
- {from: ops/mon, to: shop/db, port: 61, protocol: UDP, expect: deny}
- {from: ops/mon, to: shop/db, port: 53, protocol: TCP, expect: deny}
# ICMP type 8 (echo request) only; notProtocol UDP
- {from: ops/mon, to: shop/db, port: 8, protocol: ICMPv4, expect: allow}
- {from: ops/mon, to: shop/db, port: 0, protocol: ICMPv4, expect: deny}
- {from: shop/web, to: shop/cache, port: 6379, expect: allow}
- {from: shop/web, to: shop/cache, port: 6379, protocol: UDP, expect: deny}
"""

ADMIN_MODEL = """\
namespaces:
  shop: {}
  ops: {team: ops}
  other: {}
pods:
- {name: api, namespace: shop, labels: {app: api}}
- {name: web, namespace: shop, labels: {app: web}}
- {name: web2, namespace: shop, labels: {app: web2}}
- {name: mon, namespace: ops, labels: {app: mon}}
- {name: x, namespace: other, labels: {app: x}}
policies:
- apiVersion: policy.networking.k8s.io/v1alpha1
  kind: AdminNetworkPolicy
  metadata: {name: admin}
  spec:
    priority: 10
    subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: shop}}}
    ingress:
    - {name: mon, action: Allow, from: [{namespaces: {matchLabels: {team: ops}}}],
       ports: [{portNumber: {protocol: TCP, port: 9100}}]}
    - {name: own, action: Pass, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: shop}}}]}
    - {name: rest, action: Deny, from: [{namespaces: {}}]}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: api-web, namespace: shop}
  spec:
    podSelector: {matchLabels: {app: api}}
    ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 8080}]}]
- apiVersion: policy.networking.k8s.io/v1alpha1
  kind: BaselineAdminNetworkPolicy
  metadata: {name: default}
  spec:
    subject: {namespaces: {}}
    ingress:
    - {name: no-web, action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: web}}}}]}
probes:
# ANP allows before the NetworkPolicy (which would deny: api is isolated, mon not allowed)
- {from: ops/mon, to: shop/api, port: 9100, expect: allow}
# ANP denies before anything else
- {from: ops/mon, to: shop/api, port: 8080, expect: deny}
- {from: other/x, to: shop/web2, port: 80, expect: deny}
# ANP passes: the NetworkPolicy decides (allows 8080, isolates the rest)
- {from: shop/web, to: shop/api, port: 8080, expect: allow}
- {from: shop/web, to: shop/api, port: 9000, expect: deny}
# ANP passes, no NetworkPolicy selects web2: the BANP decides
- {from: shop/web, to: shop/web2, port: 80, expect: deny}
- {from: shop/api, to: shop/web2, port: 80, expect: allow}
# outside the ANP's subject, no BANP rule matches: allowed
- {from: shop/web2, to: other/x, port: 80, expect: allow}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = main(["check", *argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else {}, captured.err


def test_calico_model_every_probe_as_worked_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result, _ = run_json(capsys, str(write(tmp_path, "m.yaml", CALICO_MODEL)))
    failed = [p for p in result["probes"] if p["ok"] is not True]
    assert code == 0, failed
    assert result["passed"] == 18
    by = {(p["from"], p["to"], p["port"], p["protocol"]): p for p in result["probes"]}
    deny_bad = by[("203.0.113.9", "shop/free", 80, "TCP")]["ingress"]
    assert (deny_bad["policy"], deny_bad["tier"], deny_bad["rule"]) == ("security.block-bad", "security", 0)
    profile = by[("shop/web", "shop/free", 80, "TCP")]["ingress"]
    assert (profile["policy"], profile["passed"]) == ("default-allow", ["security.block-bad"])
    end_of_tier = by[("shop/web", "shop/legacy", 8101, "TCP")]["ingress"]
    assert (end_of_tier["policy"], end_of_tier["tier"], end_of_tier["rule"]) == ("quarantine.q", "quarantine", -1)
    passed_on = by[("shop/web", "shop/api", 8080, "TCP")]["ingress"]
    assert passed_on["policy"] == "shop/api-from-web" and passed_on["passed"] == ["security.block-bad", "platform"]
    assert by[("shop/web", "shop/api", 9090, "TCP")]["ingress"]["rule"] == -1
    assert by[("ops/mon", "shop/db", 53, "UDP")]["ingress"]["rule"] == 1
    assert by[("ops/mon", "shop/db", 8, "ICMPv4")]["ingress"]["rule"] == 2
    assert by[("shop/web", "shop/cache", 6379, "UDP")]["ingress"]["rule"] == -1


def test_calico_table_names_tiers_rules_and_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(write(tmp_path, "m.yaml", CALICO_MODEL))]) == 0
    out = capsys.readouterr().out
    assert "denied by quarantine.q (end of tier quarantine)" in out
    assert "allowed: no tier decides, the namespace profile allows" in out
    assert "passed on by security.block-bad, platform" in out
    assert "18 probes: 18 as expected, 0 not, 0 unchecked" in out


def test_staged_policy_enforces_nothing_in_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Were the staged deny-all enforced, web -> free would be denied in the security tier.
    model = CALICO_MODEL
    code, result, _ = run_json(capsys, str(write(tmp_path, "m.yaml", model)))
    assert code == 0
    assert all(p["ok"] for p in result["probes"])
    staged_as_real = model.replace("kind: StagedGlobalNetworkPolicy", "kind: GlobalNetworkPolicy").replace(
        ", stagedAction: Set", "")
    code, result, _ = run_json(capsys, str(write(tmp_path, "m2.yaml", staged_as_real)))
    assert code == 1
    free = next(p for p in result["probes"] if p["from"] == "shop/web" and p["to"] == "shop/free")
    assert free["verdict"] == "deny" and free["ingress"]["policy"] == "security.staged-deny-all"


def test_admin_policies_anp_then_networkpolicy_then_banp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result, _ = run_json(capsys, str(write(tmp_path, "m.yaml", ADMIN_MODEL)))
    assert code == 0, [p for p in result["probes"] if not p["ok"]]
    by = {(p["from"], p["to"], p["port"]): p["ingress"]["policy"] for p in result["probes"]}
    assert by[("ops/mon", "shop/api", 9100)] == "adminnetworkpolicy.admin"
    assert by[("shop/web", "shop/api", 8080)] == "shop/api-web"
    assert by[("shop/web", "shop/web2", 80)] == "baselineadminnetworkpolicy.default"


def test_policies_from_files_join_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Calico policies given with --policies (no namespace: --namespace) evaluate with the model's pods."""
    model = write(tmp_path, "m.yaml", """\
pods:
- {name: a, namespace: shop, labels: {app: a}}
- {name: b, namespace: shop, labels: {app: b}}
probes:
- {from: shop/a, to: shop/b, port: 80, expect: deny}
- {from: shop/b, to: shop/a, port: 80, expect: allow}
""")
    policy = write(tmp_path, "p.yaml", """\
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: b-deny}
spec: {selector: app == 'b', ingress: [{action: Deny}]}
""")
    assert main(["check", str(model), "--policies", str(policy), "--namespace", "shop"]) == 0
    captured = capsys.readouterr()
    assert f"note: {policy}:1 (document 1 b-deny): no metadata.namespace: assumed namespace shop" in captured.err
    assert "denied by shop/b-deny" in " ".join(captured.out.split())
    assert main(["check", str(model), "--policies", str(policy), "--namespace", "other"]) == 1


def test_cni_calico_evaluates_kubernetes_policies_in_the_default_tier(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "m.yaml", """\
pods:
- {name: a, namespace: shop, labels: {app: a}}
- {name: b, namespace: shop, labels: {app: b}}
policies:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: b, namespace: shop}
  spec: {podSelector: {matchLabels: {app: b}}, policyTypes: [Ingress]}
probes:
- {from: shop/a, to: shop/b, port: 80, expect: deny}
""")
    code, kube, _ = run_json(capsys, str(model))
    assert code == 0 and kube["probes"][0]["ingress"]["isolating"] == ["shop/b"]  # NetworkPolicy engine
    code, calico, _ = run_json(capsys, str(model), "--cni", "calico")
    assert code == 0 and calico["probes"][0]["ingress"]["tier"] == "default"  # tiered engine
    assert calico["probes"][0]["ingress"]["rule"] == -1


CILIUM = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: c, namespace: shop}
spec: {endpointSelector: {}, ingress: [{fromEntities: [world]}]}
"""
CALICO = """\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: g}
spec: {selector: all()}
"""
ANP = """\
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: a}
spec: {priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}
"""


@pytest.mark.parametrize(("files", "cni", "message"), [
    ([CILIUM, CALICO], None, "a policy set is for one CNI"),
    ([CILIUM, ANP], None, "a policy set is for one CNI"),
    ([CALICO], "cilium", "--cni cilium:"),
    ([ANP], "cilium", "--cni cilium:"),
    ([CILIUM], "calico", "--cni calico:"),
])
def test_mixing_cnis_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], files: list[str],
                                 cni: str | None, message: str) -> None:
    model = write(tmp_path, "m.yaml", "pods: [{name: a, namespace: shop}]\nprobes: []\n")
    argv = ["check", str(model)]
    for i, text in enumerate(files):
        argv += ["--policies", str(write(tmp_path, f"p{i}.yaml", text))]
    if cni:
        argv += ["--cni", cni]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "p0.yaml" in err


def test_invalid_calico_policy_names_file_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "m.yaml", "pods: [{name: a, namespace: shop}]\nprobes: []\n")
    bad = write(tmp_path, "p.yaml", CALICO.replace("selector: all()", "selector: app = 'x'"))
    assert main(["check", str(model), "--policies", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "p.yaml:4" in err and "spec.selector" in err and "column" in err


def test_unevaluated_kinds_warned_by_document_other_kinds_counted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "m.yaml", "pods: [{name: a, namespace: shop}]\nprobes: []\n")
    files = write(tmp_path, "p.yaml", "\n---\n".join([
        "apiVersion: example.io/v1\nkind: FancyNetworkPolicy\nmetadata: {name: f, namespace: shop}",
        "apiVersion: other.io/v1\nkind: Tier\nmetadata: {name: t}",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}",
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}",
        "apiVersion: v1\nkind: Service\nmetadata: {name: s2}",
    ]))
    for cni in ([], ["--cni", "calico"]):
        assert main(["check", str(model), "--policies", str(files), *cni]) == 0
        err = capsys.readouterr().err
        assert f"warning: {files}:1 (document 1 shop/f): kind FancyNetworkPolicy (example.io/v1) is not evaluated" \
            in err
        assert "(document 2 t): kind Tier (other.io/v1) is not evaluated" in err
        assert "warning: not policies, ignored: 1 Deployment, 2 Service" in err


def test_admin_kinds_listed_once() -> None:
    assert ADMIN_KINDS == KINDS


def test_what_offline_evaluation_cannot_decide_is_undecided(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "m.yaml", """\
pods:
- {name: a, namespace: shop, labels: {app: a}}
- {name: b, namespace: shop, labels: {app: b}}
policies:
- apiVersion: projectcalico.org/v3
  kind: NetworkPolicy
  metadata: {name: b-http, namespace: shop}
  spec:
    selector: app == 'b'
    ingress: [{action: Allow, protocol: TCP, http: {methods: [GET]}}]
probes:
- {from: shop/a, to: shop/b, port: 80, expect: deny}
""")
    assert main(["check", str(model)]) == 0  # undecided is not checked, never guessed
    out = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "undecided: not evaluated offline (http-match) at shop/b-http (tier default, rule 0)" in out
    assert "1 probes: 0 as expected, 0 not, 1 unchecked (1 undecided: not evaluated offline)" in out
    code, result, _ = run_json(capsys, str(model))
    assert code == 0 and result["undecided"] == 1
    assert result["probes"][0]["ingress"]["reason"] == "http-match" and result["probes"][0]["ok"] is None


TIER_ORDER = """\
pods:
- {name: x, namespace: shop, labels: {app: x}}
- {name: y, namespace: shop, labels: {app: y}}
policies:
- {apiVersion: projectcalico.org/v3, kind: Tier, metadata: {name: first}, spec: {order: ORDER_FIRST}}
- {apiVersion: projectcalico.org/v3, kind: Tier, metadata: {name: second}, spec: {order: 20}}
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkPolicy
  metadata: {name: first.deny-x}
  spec: {tier: first, selector: app == 'y', ingress: [{action: Deny, source: {selector: app == 'x'}}]}
- apiVersion: projectcalico.org/v3
  kind: GlobalNetworkPolicy
  metadata: {name: second.allow-x}
  spec: {tier: second, selector: app == 'y', ingress: [{action: Allow, source: {selector: app == 'x'}}]}
probes:
- {from: shop/x, to: shop/y, port: 80, expect: EXPECT}
"""


@pytest.mark.parametrize(("order", "expect", "policy"), [(10, "deny", "first.deny-x"),
                                                         (30, "allow", "second.allow-x")])
def test_tier_order_decides(tmp_path: Path, capsys: pytest.CaptureFixture[str], order: int, expect: str,
                            policy: str) -> None:
    model = write(tmp_path, "m.yaml", TIER_ORDER.replace("ORDER_FIRST", str(order)).replace("EXPECT", expect))
    code, result, _ = run_json(capsys, str(model))
    assert code == 0 and result["probes"][0]["ingress"]["policy"] == policy
