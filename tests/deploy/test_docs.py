"""docs/deploy.md (the README's "Run in a cluster") names every shape and only paths that exist."""

from __future__ import annotations

import re

from tests.deploy.manifests import OVERLAYS, REPO, containers, rendered

DOC = REPO / "docs" / "deploy.md"
CREATED_BY_THE_READER = {"deploy/exporter/local", "deploy/exporter/local/kustomization.yaml"}


def test_every_overlay_is_documented() -> None:
    text = DOC.read_text()
    for name in OVERLAYS:
        assert f"deploy/exporter/overlays/{name}" in text, f"docs/deploy.md does not describe overlay {name}"


def test_documented_repository_paths_exist() -> None:
    paths = set(re.findall(r"(?<![\w/.])((?:deploy|scripts|dashboards|rules|docs)/[\w./-]*[\w-])", DOC.read_text()))
    missing = sorted(p for p in paths - CREATED_BY_THE_READER if not (REPO / p).exists())
    assert not missing, f"docs/deploy.md names paths that do not exist: {missing}"


def test_documented_sizes_match_the_manifests() -> None:
    text = DOC.read_text()
    for fragment in ("hubble-file 50m/96Mi requested, 1 CPU/640Mi limit", "calico-flowlogs 50m/96Mi, 1 CPU/512Mi",
                     "200m/192Mi, 2 CPU/1Gi", "100m/128Mi, 1 CPU/512Mi"):
        assert fragment in text
    expected = {"hubble-file": ("50m", "96Mi", "1", "640Mi"), "calico-flowlogs": ("50m", "96Mi", "1", "512Mi"),
                "hubble-relay": ("200m", "192Mi", "2", "1Gi"), "calico-goldmane": ("100m", "128Mi", "1", "512Mi")}
    for name, (cpu, memory, cpu_limit, memory_limit) in expected.items():
        [container] = list(containers(rendered(name).workload()))
        resources = container["resources"]
        assert (resources["requests"]["cpu"], resources["requests"]["memory"]) == (cpu, memory), name
        assert (resources["limits"]["cpu"], resources["limits"]["memory"]) == (cpu_limit, memory_limit), name
