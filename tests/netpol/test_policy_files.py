"""`once --policies`: the contract's naming rules from policy files (NetworkPolicy, CNP, CCNP mixed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.core.flows import hubble_line

POLICIES = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: temporal}
spec: {podSelector: {}, policyTypes: [Ingress]}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: history-ingress, namespace: temporal}
spec:
  endpointSelector: {matchLabels: {app: temporal-history}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: temporal-frontend}}]
    toPorts: [{ports: [{port: "7235", protocol: TCP}]}]
  - fromEndpoints: [{matchLabels: {k8s:io.kubernetes.pod.namespace: temporal-workers, app: worker}}]
    toPorts: [{ports: [{port: "7235", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: frontend-open, namespace: temporal}
spec:
  endpointSelector: {matchLabels: {app: temporal-frontend}}
  enableDefaultDeny: {ingress: false}
  ingress:
  - fromEntities: [all]
    toPorts: [{ports: [{port: "7233"}]}]
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: no-test-client-debug}
spec:
  endpointSelector: {matchLabels: {io.kubernetes.pod.namespace: temporal}}
  enableDefaultDeny: {ingress: false}
  ingressDeny:
  - fromEndpoints: [{matchLabels: {io.kubernetes.pod.namespace: network-policy-test}}]
    toPorts: [{ports: [{port: "9999", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: egress-lockdown}
spec:
  endpointSelector: {matchLabels: {io.cilium.k8s.namespace.labels.lockdown: "true"}}
  egress:
  - toEntities: [cluster]
"""


def pod(namespace: str, app: str, name: str, ns_labels: dict[str, str] | None = None) -> dict[str, Any]:
    labels = [f"k8s:app={app}", f"k8s:io.kubernetes.pod.namespace={namespace}",
              f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={namespace}",
              *(f"k8s:io.cilium.k8s.namespace.labels.{k}={v}" for k, v in (ns_labels or {}).items())]
    return {"ID": 7, "identity": 4321, "namespace": namespace, "labels": labels, "pod_name": name}


CLIENT = pod("network-policy-test", "test-client", "test-client", {"lockdown": "true"})
HISTORY = pod("temporal", "temporal-history", "temporal-history-7d9f8b6c5d-x2x4z")
FRONTEND = pod("temporal", "temporal-frontend", "temporal-frontend-5c9f8b6c5d-x7k2p")
WORKER = pod("temporal-workers", "worker", "worker-6d4cf56db6-x7k2q")
WORLD = {"identity": 2, "labels": ["reserved:world"]}


def tcp(port: int) -> dict[str, Any]:
    return {"TCP": {"source_port": 40000, "destination_port": port}}


FLOWS = [
    # default deny at history's ingress: history-ingress (CNP, 1 requirement) over default-deny (NP, {})
    hubble_line(verdict="DROPPED", src=CLIENT, dst=HISTORY, l4=tcp(7235), reason="POLICY_DENIED"),
    # deny rule of a CCNP
    hubble_line(verdict="DROPPED", src=CLIENT, dst=HISTORY, l4=tcp(9999), reason="POLICY_DENY"),
    # egress default deny by a CCNP selecting by namespace label
    hubble_line(verdict="DROPPED", direction="EGRESS", src=CLIENT, dst=WORLD, dst_ip="8.8.8.8", l4=tcp(443),
                reason="POLICY_DENIED"),
    # frontend-open opts out of default deny: only the NetworkPolicy isolates the frontend
    hubble_line(verdict="DROPPED", src=CLIENT, dst=FRONTEND, l4=tcp(7000), reason="POLICY_DENIED"),
    # allowed, unnamed (Cilium < 1.15), policy_match_type 1: the allowing policies
    hubble_line(src=FRONTEND, dst=HISTORY, l4=tcp(7235), policy_match_type=1),
    hubble_line(src=WORKER, dst=HISTORY, l4=tcp(7235), policy_match_type=3),  # cross-namespace CNP peer
    # a drop at a pod whose labels the flow does not carry (field-masked export): not guessed
    hubble_line(verdict="DROPPED", src=CLIENT, dst={"namespace": "temporal", "pod_name": "temporal-matching-0"},
                l4=tcp(7235), reason="POLICY_DENIED"),
    # allowed, nothing matched (policy_match_type 0): default-allow
    hubble_line(direction="EGRESS", src=FRONTEND, dst=WORLD, dst_ip="1.1.1.1", l4=tcp(443)),
]


def once(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    flows = tmp_path / "flows.jsonl"
    flows.write_bytes(b"\n".join(FLOWS) + b"\n")
    return subprocess.run([sys.executable, "-m", "exporter", "once", "--format", "hubble", str(flows), *args],
                          capture_output=True, text=True, timeout=60, check=False, input=stdin,
                          env={**os.environ, **(env or {})})


def series(text: str, family: str) -> dict[tuple[str, str, str], float]:
    """(policy, destination, destination_port) → value of one family (summed over the other labels)."""
    out: dict[tuple[str, str, str], float] = {}
    for line in text.splitlines():
        if line.startswith(f"{family}{{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            key = (labels["policy"], labels["destination"], labels["destination_port"])
            out[key] = out.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return out


def test_policies_from_files_name_every_verdict(tmp_path: Path) -> None:
    file = tmp_path / "policies.yaml"
    file.write_text(POLICIES)
    result = once(tmp_path, "--policies", str(file))
    assert result.returncode == 0, result.stderr
    dropped = series(result.stdout, "networkpolicy_dropped_packets_total")
    assert dropped == {
        ("temporal/history-ingress", "temporal/temporal-history", "7235"): 1,
        ("no-test-client-debug", "temporal/temporal-history", "9999"): 1,
        ("egress-lockdown", "world", "443"): 1,
        ("temporal/default-deny", "temporal/temporal-frontend", "7000"): 1,
        ("default-deny", "temporal/temporal-matching", "7235"): 1,
    }
    allowed = series(result.stdout, "networkpolicy_allowed_packets_total")
    assert allowed == {
        ("temporal/history-ingress", "temporal/temporal-history", "7235"): 2,
        ("default-allow", "world", "443"): 1,
    }


def test_without_policies_the_sentinels_stay(tmp_path: Path) -> None:
    result = once(tmp_path, "--no-kubernetes")
    assert result.returncode == 0, result.stderr
    assert {k[0] for k in series(result.stdout, "networkpolicy_dropped_packets_total")} == {"default-deny", "unknown"}
    assert {k[0] for k in series(result.stdout, "networkpolicy_allowed_packets_total")} == {"unknown", "default-allow"}


def test_policies_from_stdin(tmp_path: Path) -> None:
    result = once(tmp_path, "--policies", "-", stdin=POLICIES)
    assert result.returncode == 0, result.stderr
    assert ("egress-lockdown", "world", "443") in series(result.stdout, "networkpolicy_dropped_packets_total")


@pytest.mark.parametrize("how", ["flag", "env", "config"])
def test_policies_and_an_explicit_kubeconfig_are_a_usage_error(tmp_path: Path, how: str) -> None:
    file = tmp_path / "policies.yaml"
    file.write_text(POLICIES)
    args, env = ["--policies", str(file)], {}
    if how == "flag":
        args += ["--kubeconfig", str(tmp_path / "kubeconfig")]
    elif how == "env":
        env["NETPOL_EXPORTER_KUBERNETES__KUBECONFIG"] = str(tmp_path / "kubeconfig")
    else:
        config = tmp_path / "config.yaml"
        config.write_text(f"kubernetes: {{kubeconfig: {tmp_path / 'kubeconfig'}}}\npolicies: [{file}]\n")
        args = ["--config", str(config)]
    result = once(tmp_path, *args, env=env)
    assert result.returncode == 2
    assert "exclude each other" in result.stderr and result.stdout == ""


def test_a_bad_policy_file_is_a_usage_error_naming_file_line_and_field(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(POLICIES.replace('port: "9999"', 'port: "99999"'))
    result = once(tmp_path, "--policies", str(file))
    assert result.returncode == 2
    assert f"{file}:" in result.stderr and "ports[0].port" in result.stderr and "65535" in result.stderr


def test_run_attributes_from_policy_files(tmp_path: Path) -> None:
    from tests.service.procs import Exporter, poll

    flows = tmp_path / "flows.jsonl"
    flows.write_bytes(b"\n".join(FLOWS) + b"\n")
    file = tmp_path / "policies.yaml"
    file.write_text(POLICIES)
    run = Exporter(["run", "--listen", "127.0.0.1:0", "--source", f"hubble-file:{flows}", "--policies", str(file),
                    "--state-dir", str(tmp_path / "state")])
    try:
        poll(lambda: "egress-lockdown" in run.get("/metrics"), timeout=10)
        dropped = series(run.get("/metrics"), "networkpolicy_dropped_packets_total")
        assert dropped[("no-test-client-debug", "temporal/temporal-history", "9999")] == 1
        assert ("temporal/default-deny", "temporal/temporal-frontend", "7000") in dropped
    finally:
        run.proc.terminate()
        assert run.wait_exit(15) == 0
