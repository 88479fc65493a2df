"""Every kustomization renders, and each overlay is a complete install."""

from __future__ import annotations

import os
from pathlib import Path

from exporter.config import load_config
from tests.deploy.manifests import EXAMPLES, NODE_FILE_READERS, OVERLAYS, Rendered, ident, render, rendered

EXPECTED_KINDS = {
    "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Service",
    "ServiceMonitor", "PrometheusRule", "NetworkPolicy",
}
WORKLOAD_KIND = {
    "hubble-file": "DaemonSet",
    "hubble-relay": "Deployment",
    "calico-flowlogs": "DaemonSet",
    "calico-goldmane": "Deployment",
}


def test_every_overlay_has_a_known_shape() -> None:
    assert set(OVERLAYS) == set(WORKLOAD_KIND), "a new overlay needs its shape recorded here and in docs/deploy.md"
    assert set(NODE_FILE_READERS) <= set(OVERLAYS)


def test_kustomization_renders_unique_objects(kustomization: Rendered) -> None:
    ids = [ident(obj) for obj in kustomization.objects]
    assert ids, f"{kustomization.name}: rendered nothing"
    assert len(ids) == len(set(ids)), f"{kustomization.name}: duplicate objects {sorted(ids)}"


def test_overlay_is_a_complete_install(overlay: Rendered) -> None:
    missing = EXPECTED_KINDS - overlay.by_kind.keys()
    assert not missing, f"{overlay.name}: missing {sorted(missing)}"
    assert overlay.workload()["kind"] == WORKLOAD_KIND[overlay.name]


def test_everything_namespaced_lands_in_one_namespace(overlay: Rendered) -> None:
    namespace = overlay.one("Namespace")["metadata"]["name"]
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    stray = [
        ident(obj) for obj in overlay.objects
        if obj["kind"] not in cluster_scoped and obj["metadata"].get("namespace") != namespace
    ]
    assert not stray, f"{overlay.name}: objects outside namespace {namespace}: {stray}"


def test_examples_render_complete_with_a_loadable_config(tmp_path: Path) -> None:
    assert EXAMPLES, "deploy/exporter/examples/ holds the documented customisation example"
    for name in EXAMPLES:
        example = rendered(name)
        assert example.by_kind.keys() >= EXPECTED_KINDS, name
        example.workload()
        for configmap in example.kind("ConfigMap"):
            if "config.yaml" in configmap.get("data", {}):
                path = tmp_path / f"{name}.yaml"
                path.write_text(configmap["data"]["config.yaml"])
                load_config(path, env={})


def test_an_overlay_can_move_everything_to_another_namespace(tmp_path: Path) -> None:
    """`namespace:` in an operator's overlay moves every object, the Namespace and the RBAC subject."""
    for name, directory in OVERLAYS.items():
        mine = tmp_path / name
        mine.mkdir()
        (mine / "kustomization.yaml").write_text(
            f"namespace: observability-netpol\nresources:\n  - {os.path.relpath(directory, mine)}\n")
        moved = Rendered(name, render(mine))
        assert moved.one("Namespace")["metadata"]["name"] == "observability-netpol"
        for obj in moved.objects:
            if obj["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding"}:
                assert obj["metadata"]["namespace"] == "observability-netpol", ident(obj)
        [binding] = moved.kind("ClusterRoleBinding")
        assert [s["namespace"] for s in binding["subjects"]] == ["observability-netpol"], name
