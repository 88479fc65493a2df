"""Small builders for NetworkPolicy unit tests."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from exporter.netpol.evaluator import ContainerPort, Endpoint, Verdict
from exporter.netpol.labels import Labels
from exporter.netpol.modelfile import Cluster
from exporter.netpol.policy import parse_policy

WEB_PORTS = (ContainerPort(8080, "TCP", "http"), ContainerPort(53, "UDP", "dns"), ContainerPort(9000, "SCTP", "sig"))


def policy(name: str, spec: dict[str, Any], namespace: str = "app") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def make_cluster(*policies: dict[str, Any]) -> Cluster:
    """Namespaces app (team=a) and other (team=b); pods app/web, app/db, app/bare, other/web, other/client."""
    cluster = Cluster()
    cluster.add_namespace("app", {"team": "a"})
    cluster.add_namespace("other", {"team": "b"})
    pods = [
        ("app", "web", {"role": "web", "tier": "front"}, "10.0.0.1", WEB_PORTS),
        ("app", "db", {"role": "db"}, "10.0.0.2", (ContainerPort(5432, "TCP", "pg"),)),
        ("app", "bare", {}, None, ()),
        ("other", "web", {"role": "web"}, "10.1.0.1", WEB_PORTS),
        ("other", "client", {"role": "client", "env": "prod"}, "10.1.0.2", ()),
    ]
    for ns, name, labels, ip, ports in pods:
        cluster.pods[f"{ns}/{name}"] = Endpoint(
            key=f"{ns}/{name}",
            namespace=ns,
            labels=Labels(labels),
            namespace_labels=cluster.namespaces[ns],
            ip=ipaddress.ip_address(ip) if ip else None,
            ports=ports,
        )
    cluster.policies = [parse_policy(p) for p in policies]
    return cluster


def verdict(cluster: Cluster, src: str, dst: str, port: int | None, protocol: str = "TCP") -> Verdict:
    return cluster.evaluate(cluster.endpoint(src), cluster.endpoint(dst), port, protocol)


def allowed(cluster: Cluster, src: str, dst: str, port: int | None = 8080, protocol: str = "TCP") -> bool:
    return verdict(cluster, src, dst, port, protocol).allowed


UPSTREAM = Path(__file__).resolve().parents[2] / "tests" / "upstream"
SEED_GUIDE = UPSTREAM / "seed" / "network-policies-guide.md"


def seed_policies(directory: Path) -> Path:
    """Write the seed guide's NetworkPolicy YAML blocks to one multi-document file."""
    text = SEED_GUIDE.read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "kind: NetworkPolicy" in b]
    path = directory / "seed-policies.yaml"
    path.write_text("\n---\n".join(blocks), encoding="utf-8")
    return path
