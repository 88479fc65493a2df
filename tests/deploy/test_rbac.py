"""RBAC grants exactly what the Kubernetes enrichment watches: get/list/watch on its kinds, nothing more.

The watched kinds come from the code (exporter.kube.kinds.list_calls): each list call's REST path in
the official client gives its API group and resource.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from tests.deploy.manifests import Rendered, pod_spec

DOCUMENTED = {("", "pods"), ("", "namespaces"), ("apps", "replicasets"), ("networking.k8s.io", "networkpolicies")}
VERBS = {"get", "list", "watch"}
PATH = re.compile(r"'(/api/v1|/apis/([^/']+)/[^/']+)/([a-z]+)'")


def _group_resource(call: Callable[..., Any]) -> tuple[str, str]:
    owner, name = call.__self__, call.__name__  # type: ignore[attr-defined]
    for candidate in (f"_{name}_serialize", f"{name}_with_http_info", name):
        method = getattr(owner, candidate, None)
        if method is None:
            continue
        match = PATH.search(inspect.getsource(method))
        if match:
            return match.group(2) or "", match.group(3)
    raise AssertionError(f"cannot find the REST path of {type(owner).__name__}.{name}")


@cache
def watched_by_code() -> set[tuple[str, str]]:
    if importlib.util.find_spec("exporter.kube.kinds") is None:
        pytest.skip("exporter.kube.kinds is not part of this build")
    from kubernetes import client

    from exporter.kube.kinds import list_calls

    return {_group_resource(call) for call in list_calls(client.ApiClient()).values()}


def granted(overlay: Rendered) -> dict[tuple[str, str], set[str]]:
    [role] = overlay.kind("ClusterRole")
    out: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_code_watches_the_documented_kinds() -> None:
    assert watched_by_code() == DOCUMENTED


def test_cluster_role_grants_exactly_what_the_code_watches(overlay: Rendered) -> None:
    grants = granted(overlay)
    assert set(grants) == watched_by_code()
    for key, verbs in grants.items():
        assert verbs == VERBS, f"{overlay.name}: {key} verbs {sorted(verbs)}"
    assert not overlay.kind("Role") and not overlay.kind("RoleBinding")


def test_binding_binds_the_pods_service_account(overlay: Rendered) -> None:
    [role] = overlay.kind("ClusterRole")
    [binding] = overlay.kind("ClusterRoleBinding")
    [account] = overlay.kind("ServiceAccount")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    assert pod_spec(overlay.workload())["serviceAccountName"] == account["metadata"]["name"]
