"""RBAC grants exactly what the Kubernetes enrichment watches: get/list/watch on its kinds, nothing more.

The watched kinds come from the code (exporter.kube.kinds.list_calls): each list call's REST path in
the official client gives its API group and resource.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from functools import cache
from typing import Any

import pytest

from tests.deploy.manifests import REPO, Rendered, pod_spec

DOCUMENTED = {("", "pods"), ("", "namespaces"), ("apps", "replicasets"), ("networking.k8s.io", "networkpolicies"),
              ("cilium.io", "ciliumnetworkpolicies"), ("cilium.io", "ciliumclusterwidenetworkpolicies"),
              ("projectcalico.org", "networkpolicies"), ("projectcalico.org", "globalnetworkpolicies"),
              ("policy.networking.k8s.io", "adminnetworkpolicies"),
              ("policy.networking.k8s.io", "baselineadminnetworkpolicies"),
              ("policy.networking.k8s.io", "clusternetworkpolicies")}
VERBS = {"get", "list", "watch"}
PATH = re.compile(r"^(?:/api/v1|/apis/([^/]+)/[^/]+)/([a-z]+)$")
PATH_LITERAL = re.compile(r"""["'](/apis?/[^"'{}\s]*)["']""")
KUBE_PACKAGE = REPO / "exporter" / "kube"


def _group_resource(path: str) -> tuple[str, str]:
    match = PATH.match(path)
    assert match, f"{path}: not a cluster-wide collection path; teach tests/deploy/test_rbac.py its RBAC"
    return match.group(1) or "", match.group(2)


def _path_of(call: Any) -> str:
    """The REST path a list call requests: a ListCall's `path`, or a generated client method's."""
    if isinstance(getattr(call, "path", None), str):
        return str(call.path)
    owner, name = call.__self__, call.__name__
    for candidate in (f"_{name}_serialize", f"{name}_with_http_info", name):
        method = getattr(owner, candidate, None)
        found = PATH_LITERAL.search(inspect.getsource(method)) if method is not None else None
        if found:
            return found.group(1)
    raise AssertionError(f"cannot find the REST path of {type(owner).__name__}.{name}")


@cache
def watched_by_code() -> set[tuple[str, str]]:
    if importlib.util.find_spec("exporter.kube.kinds") is None:
        pytest.skip("exporter.kube.kinds is not part of this build")
    from exporter.kube.kinds import list_calls

    return {_group_resource(_path_of(call)) for call in list_calls(None).values()}


def requested_anywhere_in_kube() -> set[tuple[str, str]]:
    """Every API path literal in exporter/kube/: nothing there may reach past what RBAC grants."""
    paths = {m.group(1) for f in KUBE_PACKAGE.rglob("*.py") for m in PATH_LITERAL.finditer(f.read_text())}
    return {_group_resource(path) for path in paths}


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
    assert requested_anywhere_in_kube() <= watched_by_code()


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
