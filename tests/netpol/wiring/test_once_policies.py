"""`once --policies` with `--namespace`, `--cni`, Calico sets and kinds no engine reads."""

from __future__ import annotations

from pathlib import Path

from tests.netpol.test_policy_files import POLICIES, once, series

UNNAMESPACED = POLICIES.replace("metadata: {name: history-ingress, namespace: temporal}",
                                "metadata: {name: history-ingress}")
EXTRA = """\
---
apiVersion: example.io/v1
kind: FancyNetworkPolicy
metadata: {name: fancy, namespace: temporal}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
"""


def test_namespace_for_policies_without_one(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(UNNAMESPACED)
    key = ("temporal/history-ingress", "temporal/temporal-history", "7235")
    result = once(tmp_path, "--policies", str(file))  # the CNP lands in namespace default: not named
    assert result.returncode == 0, result.stderr
    assert key not in series(result.stdout, "networkpolicy_dropped_packets_total")
    result = once(tmp_path, "--policies", str(file), "--namespace", "temporal")
    assert result.returncode == 0, result.stderr
    assert series(result.stdout, "networkpolicy_dropped_packets_total")[key] == 1
    result = once(tmp_path, "--policies", str(file), env={"NETPOL_EXPORTER_POLICIES_NAMESPACE": "temporal"})
    assert series(result.stdout, "networkpolicy_dropped_packets_total")[key] == 1


def test_unevaluated_kinds_are_warned_about(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(POLICIES + EXTRA)
    result = once(tmp_path, "--policies", str(file))
    assert result.returncode == 0, result.stderr
    assert "(document 6 temporal/fancy): kind FancyNetworkPolicy (example.io/v1) is not evaluated" in result.stderr
    assert "not policies, ignored: 1 Deployment" in result.stderr


def test_cni_calico_with_cilium_policies_is_a_usage_error(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(POLICIES)
    result = once(tmp_path, "--policies", str(file), "--cni", "calico")
    assert result.returncode == 2 and "--cni calico:" in result.stderr and "Cilium kind" in result.stderr


def test_a_calico_set_loads_and_names_nothing_in_hubble_records(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\n"
                    "spec: {selector: all(), ingress: [{action: Deny}]}\n")
    result = once(tmp_path, "--policies", str(file))
    assert result.returncode == 0, result.stderr
    assert {k[0] for k in series(result.stdout, "networkpolicy_dropped_packets_total")} == {"default-deny", "unknown"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\n"
                   "spec: {selector: app = 'x'}\n")
    result = once(tmp_path, "--policies", str(bad))
    assert result.returncode == 2 and f"{bad}:4" in result.stderr and "column" in result.stderr
