"""The watched kinds: how each one's JSON reaches ClusterState, and the client call that lists it.

Pods, ReplicaSets, Namespaces and NetworkPolicies always; CiliumNetworkPolicies and
CiliumClusterwideNetworkPolicies, Calico's NetworkPolicies and GlobalNetworkPolicies
(`projectcalico.org/v3`, served by the Calico API server) and AdminNetworkPolicies,
BaselineAdminNetworkPolicies and ClusterNetworkPolicies (`policy.networking.k8s.io`) when they are
served (OPTIONAL: a 404 means "not served", an empty set that is checked again later,
exporter.kube.watch). The Calico and admin kinds feed `networkpolicy_info` and zero-seeding only:
Calico's flow records name their policies themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from exporter.kube.objects import MetaOnly, Pod, decode_any
from exporter.kube.state import ClusterState

PODS, REPLICASETS, NAMESPACES, NETWORKPOLICIES = "pods", "replicasets", "namespaces", "networkpolicies"
CNPS, CCNPS = "ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies"
CALICO_NPS, CALICO_GNPS = "networkpolicies.projectcalico.org", "globalnetworkpolicies.projectcalico.org"
ANPS, BANPS, CLUSTER_NPS = "adminnetworkpolicies", "baselineadminnetworkpolicies", "clusternetworkpolicies"
# resource → (apiVersion, kind) of the objects, whose list items carry neither
TIERED_KINDS = {
    CALICO_NPS: ("projectcalico.org/v3", "NetworkPolicy"),
    CALICO_GNPS: ("projectcalico.org/v3", "GlobalNetworkPolicy"),
    ANPS: ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"),
    BANPS: ("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy"),
    CLUSTER_NPS: ("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy"),
}
KINDS = (PODS, REPLICASETS, NAMESPACES, NETWORKPOLICIES, CNPS, CCNPS, *TIERED_KINDS)
OPTIONAL: frozenset[str] = frozenset({CNPS, CCNPS, *TIERED_KINDS})  # CRDs, aggregated APIs: watched when served
POLICY_KIND_OF = {NETWORKPOLICIES: "NetworkPolicy", CNPS: "CiliumNetworkPolicy",
                  CCNPS: "CiliumClusterwideNetworkPolicy"}

_decode_pod = msgspec.json.Decoder(Pod).decode
_decode_pods = msgspec.json.Decoder(list[Pod]).decode
_decode_meta = msgspec.json.Decoder(MetaOnly).decode
_decode_metas = msgspec.json.Decoder(list[MetaOnly]).decode


class PodSink:
    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def replace(self, items_json: list[bytes]) -> None:
        self.state.replace_pods(pod for page in items_json for pod in _decode_pods(page))

    def apply(self, event_type: str, object_json: bytes) -> str:
        pod = _decode_pod(object_json)
        if event_type == "DELETED":
            self.state.delete_pod(pod)
        else:
            self.state.upsert_pod(pod)
        return pod.metadata.resource_version

    def __len__(self) -> int:
        return len(self.state.pods_by_name)


class ReplicaSetSink:
    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def replace(self, items_json: list[bytes]) -> None:
        self.state.replace_replicasets(rs for page in items_json for rs in _decode_metas(page))

    def apply(self, event_type: str, object_json: bytes) -> str:
        rs = _decode_meta(object_json)
        if event_type == "DELETED":
            self.state.delete_replicaset(rs)
        else:
            self.state.upsert_replicaset(rs)
        return rs.metadata.resource_version

    def __len__(self) -> int:
        return len(self.state.rs_workload)


class NamespaceSink:
    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def replace(self, items_json: list[bytes]) -> None:
        self.state.replace_namespaces([ns for page in items_json for ns in _decode_metas(page)])

    def apply(self, event_type: str, object_json: bytes) -> str:
        ns = _decode_meta(object_json)
        if event_type == "DELETED":
            self.state.delete_namespace(ns)
        else:
            self.state.upsert_namespace(ns)
        return ns.metadata.resource_version

    def __len__(self) -> int:
        return len(self.state.namespaces)


class NetworkPolicySink:
    """NetworkPolicies, or (`kind`) CiliumNetworkPolicies / CiliumClusterwideNetworkPolicies."""

    def __init__(self, state: ClusterState, kind: str = "NetworkPolicy") -> None:
        self.state = state
        self.kind = kind

    def replace(self, items_json: list[bytes]) -> None:
        items: list[Any] = [obj for page in items_json for obj in decode_any(page)]
        self.state.replace_policies([obj for obj in items if isinstance(obj, dict)], self.kind)

    def apply(self, event_type: str, object_json: bytes) -> str:
        obj = decode_any(object_json)
        if not isinstance(obj, dict):
            return ""
        if event_type == "DELETED":
            self.state.delete_policy(obj, self.kind)
        else:
            self.state.upsert_policy(obj, self.kind)
        return str((obj.get("metadata") or {}).get("resourceVersion") or "")

    def __len__(self) -> int:
        return sum(1 for p in self.state.policies.values() if p.kind == self.kind)


class TieredPolicySink:
    """Calico policies and the AdminNetworkPolicy family: `networkpolicy_info` and zero-seeding."""

    def __init__(self, state: ClusterState, resource: str) -> None:
        self.state = state
        self.api_version, self.kind = TIERED_KINDS[resource]

    def _typed(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, **obj}

    def replace(self, items_json: list[bytes]) -> None:
        items: list[Any] = [obj for page in items_json for obj in decode_any(page)]
        self.state.replace_tiered_policies([self._typed(o) for o in items if isinstance(o, dict)], self.kind)

    def apply(self, event_type: str, object_json: bytes) -> str:
        obj = decode_any(object_json)
        if not isinstance(obj, dict):
            return ""
        if event_type == "DELETED":
            self.state.delete_tiered_policy(self._typed(obj))
        else:
            self.state.upsert_tiered_policy(self._typed(obj))
        return str((obj.get("metadata") or {}).get("resourceVersion") or "")

    def __len__(self) -> int:
        return sum(1 for p in self.state.policies.values() if p.source_kind == self.kind)


COLLECTIONS = {
    PODS: "/api/v1/pods",
    REPLICASETS: "/apis/apps/v1/replicasets",
    NAMESPACES: "/api/v1/namespaces",
    NETWORKPOLICIES: "/apis/networking.k8s.io/v1/networkpolicies",
    CNPS: "/apis/cilium.io/v2/ciliumnetworkpolicies",
    CCNPS: "/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies",
    CALICO_NPS: "/apis/projectcalico.org/v3/networkpolicies",
    CALICO_GNPS: "/apis/projectcalico.org/v3/globalnetworkpolicies",
    ANPS: "/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies",
    BANPS: "/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies",
    CLUSTER_NPS: "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies",
}


class ListCall:
    """GET a cluster-wide collection (list or watch) through the client's ApiClient.

    The same request the generated `list_*_for_all_namespaces(..., _preload_content=False)` methods
    make (BearerToken auth settings, the client's REST layer, ApiException on non-2xx), without
    importing the generated API modules, which pull in every model and take seconds to import.
    """

    def __init__(self, api: Any, path: str) -> None:
        self.api = api
        self.path = path

    def __call__(self, *, watch: bool = False, resource_version: str | None = None,
                 allow_watch_bookmarks: bool | None = None, timeout_seconds: int | None = None,
                 limit: int | None = None, _continue: str | None = None, _preload_content: bool = False,
                 _request_timeout: Any = None) -> Any:
        from kubernetes.client.exceptions import ApiException

        query: list[tuple[str, Any]] = []
        for name, value in (("allowWatchBookmarks", allow_watch_bookmarks), ("continue", _continue),
                            ("limit", limit), ("resourceVersion", resource_version),
                            ("timeoutSeconds", timeout_seconds), ("watch", watch or None)):
            if value is not None:
                query.append((name, value))
        request = self.api.param_serialize(
            method="GET", resource_path=self.path, query_params=query,
            header_params={"Accept": "application/json"}, auth_settings=["BearerToken"])
        response = self.api.call_api(*request, _request_timeout=_request_timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response  # the urllib3 response, not read yet


def list_calls(api: Any) -> dict[str, Callable[..., Any]]:
    """The list-or-watch call per kind (cluster-wide)."""
    return {kind: ListCall(api, path) for kind, path in COLLECTIONS.items()}


def sinks(state: ClusterState) -> dict[str, Any]:
    return {
        PODS: PodSink(state),
        REPLICASETS: ReplicaSetSink(state),
        NAMESPACES: NamespaceSink(state),
        **{resource: NetworkPolicySink(state, kind) for resource, kind in POLICY_KIND_OF.items()},
        **{resource: TieredPolicySink(state, resource) for resource in TIERED_KINDS},
    }
