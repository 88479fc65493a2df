"""The four watched kinds: how each one's JSON reaches ClusterState, and the client call that lists it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from kubernetes import client

from exporter.kube.objects import MetaOnly, Pod, decode_any
from exporter.kube.state import ClusterState

PODS, REPLICASETS, NAMESPACES, NETWORKPOLICIES = "pods", "replicasets", "namespaces", "networkpolicies"
KINDS = (PODS, REPLICASETS, NAMESPACES, NETWORKPOLICIES)

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
    def __init__(self, state: ClusterState) -> None:
        self.state = state

    def replace(self, items_json: list[bytes]) -> None:
        items: list[Any] = [obj for page in items_json for obj in decode_any(page)]
        self.state.replace_policies([obj for obj in items if isinstance(obj, dict)])

    def apply(self, event_type: str, object_json: bytes) -> str:
        obj = decode_any(object_json)
        if not isinstance(obj, dict):
            return ""
        if event_type == "DELETED":
            self.state.delete_policy(obj)
        else:
            self.state.upsert_policy(obj)
        return str((obj.get("metadata") or {}).get("resourceVersion") or "")

    def __len__(self) -> int:
        return len(self.state.policies)


def list_calls(api: client.ApiClient) -> dict[str, Callable[..., Any]]:
    """The client's list-or-watch call per kind (cluster-wide)."""
    core = client.CoreV1Api(api)
    return {
        PODS: core.list_pod_for_all_namespaces,
        REPLICASETS: client.AppsV1Api(api).list_replica_set_for_all_namespaces,
        NAMESPACES: core.list_namespace,
        NETWORKPOLICIES: client.NetworkingV1Api(api).list_network_policy_for_all_namespaces,
    }


def sinks(state: ClusterState) -> dict[str, Any]:
    return {
        PODS: PodSink(state),
        REPLICASETS: ReplicaSetSink(state),
        NAMESPACES: NamespaceSink(state),
        NETWORKPOLICIES: NetworkPolicySink(state),
    }
