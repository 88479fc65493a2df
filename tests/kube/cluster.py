"""The test cluster: namespaces, workloads and policies the fixture flows refer to."""

from __future__ import annotations

from typing import Any

from tests.kube.fake_apiserver import Cluster


def owner(kind: str, name: str) -> list[dict[str, Any]]:
    api = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    return [{"apiVersion": api, "kind": kind, "name": name, "uid": f"uid-{name}", "controller": True,
             "blockOwnerDeletion": True}]


def pod(ns: str, name: str, labels: dict[str, str], ip: str, owner_ref: list[dict[str, Any]] | None = None,
        *, host_network: bool = False, phase: str = "Running") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}", "labels": labels}
    if owner_ref:
        meta["ownerReferences"] = owner_ref
    return {
        "metadata": meta,
        "spec": {"hostNetwork": host_network, "containers": [{"name": "c", "image": "example/app:1"}],
                 "nodeName": "node-1"},
        "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.168.0.10"},
    }


def replicaset(ns: str, name: str, deployment: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "ownerReferences": owner("Deployment", deployment)},
            "spec": {"replicas": 1}, "status": {"replicas": 1}}


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def netpol(ns: str, name: str, spec: dict[str, Any], managed_time: str = "2026-11-28T12:00:00Z") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns,
                         "managedFields": [{"manager": "kubectl", "operation": "Update", "time": managed_time,
                                            "fieldsType": "FieldsV1", "fieldsV1": {}}]},
            "spec": spec}


DEFAULT_DENY_ALL = netpol("shop", "default-deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
WEB_INGRESS = netpol("shop", "web-ingress", {
    "podSelector": {"matchLabels": {"app": "web"}},
    "policyTypes": ["Ingress"],
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "frontend"}}}], "ports": [{"port": 8080}]}],
})
DEATHSTAR = netpol("default", "deathstar-ingress", {
    "podSelector": {"matchLabels": {"org": "empire", "class": "deathstar"}},
    "ingress": [{"from": [{"podSelector": {"matchLabels": {"org": "empire"}}}], "ports": [{"port": 80}]}],
})
OPEN_DENY = netpol("open", "deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})

WEB_POD = pod("shop", "web-7d4b9c8f5b-x2x9z", {"app": "web", "pod-template-hash": "7d4b9c8f5b"}, "10.0.0.5",
              owner("ReplicaSet", "web-7d4b9c8f5b"))
BACKUP_POD = pod("shop", "nightly-backup-29400000-q7x2z", {"job-name": "nightly-backup-29400000"}, "10.0.0.7",
                 owner("Job", "nightly-backup-29400000"))


def populate(cluster: Cluster) -> None:
    for ns in ("shop", "monitoring", "default", "open"):
        cluster.apply("namespaces", namespace(ns, {"team": "t"} if ns == "shop" else None))
    cluster.apply("replicasets", replicaset("shop", "web-7d4b9c8f5b", "storefront"))
    cluster.apply("replicasets", replicaset("default", "deathstar-7848d6c4d5", "deathstar"))
    cluster.apply("pods", WEB_POD)
    cluster.apply("pods", BACKUP_POD)
    cluster.apply("pods", pod("monitoring", "prometheus-0", {"app": "prometheus"}, "10.0.1.9",
                              owner("StatefulSet", "prometheus")))
    cluster.apply("pods", pod("monitoring", "node-exporter-x7k2p", {"app": "node-exporter"}, "192.168.0.10",
                              owner("DaemonSet", "node-exporter"), host_network=True))
    cluster.apply("pods", pod("default", "deathstar-7848d6c4d5-th9v2", {"org": "empire", "class": "deathstar"},
                              "10.244.1.5", owner("ReplicaSet", "deathstar-7848d6c4d5")))
    cluster.apply("pods", pod("default", "xwing", {"org": "alliance", "class": "xwing"}, "10.244.1.60"))
    cluster.apply("pods", pod("open", "shell-6b7c8d9f5d-k2m4p", {"app": "shell"}, "10.0.2.3",
                              owner("ReplicaSet", "shell-6b7c8d9f5d")))
    for policy in (DEFAULT_DENY_ALL, WEB_INGRESS, DEATHSTAR):
        cluster.apply("networkpolicies", policy)
