"""Acceptance cases from tests/upstream/samples/netpol: cyclonus' simple-example truth tables and
netpol-analyzer's golden connectivity lists."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.netpol.connset import connections
from exporter.netpol.evaluator import ContainerPort, Endpoint, group_by_namespace
from exporter.netpol.labels import Labels
from exporter.netpol.loading import load_policies
from exporter.netpol.modelfile import Cluster

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "upstream" / "samples" / "netpol"

# -- cyclonus simple-example -------------------------------------------------------------------


def parse_truth_tables(text: str) -> list[tuple[str, dict[tuple[str, str], str]]]:
    """[(kind, {(src, dst): cell})] in file order; kind is Ingress, Egress or Combined."""
    tables: list[tuple[str, dict[tuple[str, str], str]]] = []
    columns: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("Ingress:", "Egress:", "Combined:"):
            tables.append((stripped[:-1], {}))
            columns = []
        elif stripped.startswith("|") and tables:
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if cells[0] == "":
                columns = [c.lower() for c in cells[1:]]
            else:
                for dst, value in zip(columns, cells[1:], strict=True):
                    tables[-1][1][(cells[0], dst)] = value
    return tables


@pytest.fixture(scope="module")
def cyclonus() -> tuple[Cluster, list[dict[str, Any]], list[tuple[str, dict[tuple[str, str], str]]]]:
    base = SAMPLES / "simple-example"
    probe = json.loads((base / "probe.json").read_text())
    cluster = Cluster()
    for name, labels in probe["Resources"]["Namespaces"].items():
        cluster.add_namespace(name, labels)
    for pod in probe["Resources"]["Pods"]:
        ports = tuple(ContainerPort(c["Port"], c["Protocol"].upper(), c["PortName"]) for c in pod["Containers"])
        key = f"{pod['Namespace']}/{pod['Name']}"
        cluster.pods[key] = Endpoint(
            key=key,
            namespace=pod["Namespace"],
            labels=Labels(pod["Labels"]),
            namespace_labels=cluster.namespaces[pod["Namespace"]],
            ip=ipaddress.ip_address(pod["IP"]),
            ports=ports,
        )
    loaded = load_policies([base / "policies"])
    assert not loaded.invalid and len(loaded.policies) == 7
    cluster.policies = [lp.policy for lp in loaded.policies]
    tables = parse_truth_tables((base / "expected_analyze-probe.txt").read_text())
    return cluster, probe["Probes"], tables


def test_cyclonus_truth_tables(cyclonus: tuple[Cluster, list[dict[str, Any]], list[Any]]) -> None:
    cluster, probes, tables = cyclonus
    compared = 0
    for index, probe in enumerate(probes):
        (_, ingress), (_, egress), (_, combined) = tables[3 * index : 3 * index + 3]
        assert len(combined) == 81
        for (src, dst), expected in combined.items():
            if expected not in (".", "X"):
                continue  # 'N'/'?': cyclonus did not probe (no container serves the port)
            verdict = cluster.evaluate(cluster.pods[src], cluster.pods[dst], probe["Port"], probe["Protocol"])
            assert verdict.ingress is not None and verdict.egress is not None
            assert verdict.ingress.allowed == (ingress[(src, dst)] == "."), (probe, src, dst, "ingress")
            assert verdict.egress.allowed == (egress[(src, dst)] == "."), (probe, src, dst, "egress")
            if src == dst:
                # cyclonus does not special-case loopback; Kubernetes always allows a pod's own traffic.
                assert verdict.allowed
            else:
                assert verdict.allowed == (expected == "."), (probe, src, dst)
            compared += 1
    assert compared == 2 * 81  # TCP 80 and TCP 81; TCP 82 is 'not probed' throughout


# -- netpol-analyzer connlists -----------------------------------------------------------------

EXTERNAL = "0.0.0.0-255.255.255.255[External]"


def analyzer_cluster(case: Path) -> tuple[Cluster, dict[str, Endpoint]]:
    """Namespaces and one pod per Deployment (named `ns/name[Deployment]`), policies in `default`."""
    cluster = Cluster()
    workloads: dict[str, Endpoint] = {}
    docs = [d for f in sorted(case.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    for doc in docs:
        if doc["kind"] == "Namespace":
            cluster.add_namespace(doc["metadata"]["name"], doc["metadata"].get("labels"))
    for n, doc in enumerate(d for d in docs if d["kind"] == "Deployment"):
        ns = doc["metadata"].get("namespace", "default")
        if ns not in cluster.namespaces:
            cluster.add_namespace(ns)
        template = doc["spec"]["template"]
        ports = tuple(
            ContainerPort(p["containerPort"], p.get("protocol", "TCP"), p.get("name"))
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
        )
        key = f"{ns}/{doc['metadata']['name']}[Deployment]"
        pod = Endpoint(
            key=key,
            namespace=ns,
            labels=Labels(template["metadata"]["labels"]),
            namespace_labels=cluster.namespaces[ns],
            ip=ipaddress.ip_address(f"10.244.0.{n + 10}"),
            ports=ports,
        )
        cluster.pods[key] = workloads[key] = pod
    policy_files = [
        f
        for f in sorted(case.glob("*.yaml"))
        if any(d and d.get("kind") == "NetworkPolicy" for d in yaml.safe_load_all(f.read_text()))
    ]
    loaded = load_policies(policy_files, default_namespace="default")
    assert not loaded.invalid
    cluster.policies = [lp.policy for lp in loaded.policies]
    workloads[EXTERNAL] = Endpoint(key="203.0.113.50", namespace=None, ip=ipaddress.ip_address("203.0.113.50"))
    return cluster, workloads


@pytest.mark.parametrize("case", ["minimal_test_in_ns", "netpol-analysis-example-minimal"])
def test_netpol_analyzer_connlist(case: str) -> None:
    directory = SAMPLES / "netpol-analyzer" / case
    cluster, workloads = analyzer_cluster(directory)
    by_ns = group_by_namespace(cluster.policies)
    lines = set()
    for src_name, src in workloads.items():
        for dst_name, dst in workloads.items():
            if src_name == dst_name or (src.namespace is None and dst.namespace is None):
                continue
            conns = connections(by_ns, src, dst)
            if not conns.empty:
                lines.add(f"{src_name} => {dst_name} : {conns.describe()}")
    expected = {line for line in (directory / "expected_connlist_output.txt").read_text().splitlines() if line}
    assert lines == expected
