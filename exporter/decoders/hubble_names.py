"""Hubble endpoints and policies → the contract's peer and policy label values."""

from __future__ import annotations

from typing import Final

import msgspec

from exporter.model import Peer
from exporter.naming import UNKNOWN, pod_peer_name, workload_from_labels, workload_from_pod_name


class Workload(msgspec.Struct, gc=False):
    name: str = ""
    kind: str = ""


class Endpoint(msgspec.Struct, gc=False):
    ID: int = 0
    identity: int = 0
    cluster_name: str = ""
    namespace: str = ""
    labels: list[str] | None = None
    pod_name: str = ""
    workloads: list[Workload] | None = None


class Policy(msgspec.Struct, gc=False):
    name: str = ""
    namespace: str = ""
    labels: list[str] | None = None
    revision: str | int = ""
    kind: str = ""


# Reserved identities (pkg/identity/numericidentity.go); world-ipv4/ipv6 are `world` to us.
RESERVED_BY_IDENTITY: Final = {
    1: "host",
    2: "world",
    3: "unmanaged",
    4: "health",
    5: "init",
    6: "remote-node",
    7: "kube-apiserver",
    8: "ingress",
    9: "world",
    10: "world",
}
RESERVED_NAMES: Final = {
    "host": "host",
    "world": "world",
    "world-ipv4": "world",
    "world-ipv6": "world",
    "unmanaged": "unmanaged",
    "health": "health",
    "init": "init",
    "remote-node": "remote-node",
    "kube-apiserver": "kube-apiserver",
    "ingress": "ingress",
    "unknown": "unknown",
}
# An endpoint carrying several reserved labels (the host is also kube-apiserver) takes the first.
RESERVED_PRECEDENCE: Final = ("kube-apiserver", "host", "remote-node", "ingress", "health", "init", "unmanaged",
                              "world", "unknown")
_NS_LABEL = "k8s:io.kubernetes.pod.namespace="
_FIRST_LOCAL_CIDR_IDENTITY = 1 << 24  # CIDR / FQDN identities are allocated from here: outside the cluster

_decode_endpoint = msgspec.json.Decoder(Endpoint).decode
_decode_policies = msgspec.json.Decoder(list[Policy] | None).decode


def _k8s_labels(labels: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for label in labels:
        if label.startswith("k8s:"):
            key, _, value = label[4:].partition("=")
            out[key] = value
    return out


def _reserved_name(labels: list[str]) -> str:
    found = set()
    for label in labels:
        if label.startswith("reserved:"):
            found.add(RESERVED_NAMES.get(label[9:], label[9:]))
        elif label.startswith(("cidr:", "fqdn:")):
            found.add("world")
    for name in RESERVED_PRECEDENCE:
        if name in found:
            return name
    return next(iter(sorted(found))) if found else ""


# The same pairs of pods talk all day: the raw JSON bytes of both endpoints (and the addresses) key a
# bounded cache of named peers, so an endpoint is decoded only the first time its pair is seen.
_PEER_CACHE_SIZE = 50_000
_pair_cache: dict[tuple[bytes, bytes, str, str], tuple[Peer, Peer]] = {}


def peers_from_endpoints(source: bytes, destination: bytes, source_ip: str, destination_ip: str) -> tuple[Peer, Peer]:
    """Name both sides of a flow (contract: source, destination, *_namespace)."""
    key = (bytes(source), bytes(destination), source_ip, destination_ip)
    peers = _pair_cache.get(key)
    if peers is None:
        if len(_pair_cache) >= _PEER_CACHE_SIZE:
            _pair_cache.clear()
        peers = _pair_cache[key] = (_name_endpoint(source, source_ip), _name_endpoint(destination, destination_ip))
    return peers


def _name_endpoint(raw: bytes, ip: str) -> Peer:
    ep = _decode_endpoint(raw) if raw else Endpoint()
    labels = ep.labels or []
    namespace = ep.namespace
    if not namespace:
        for label in labels:
            if label.startswith(_NS_LABEL):
                namespace = label[len(_NS_LABEL):]
                break
    if namespace:
        if ep.workloads and ep.workloads[0].name:
            workload = ep.workloads[0].name
        elif ep.pod_name:
            workload = workload_from_pod_name(ep.pod_name)
        else:
            workload = workload_from_labels(_k8s_labels(labels))
        return Peer(pod_peer_name(namespace, workload), namespace, ip, ep.pod_name, tuple(labels))
    name = _reserved_name(labels) or RESERVED_BY_IDENTITY.get(ep.identity, "")
    if not name:
        name = "world" if ep.identity >= _FIRST_LOCAL_CIDR_IDENTITY else UNKNOWN
    return Peer(name, "", ip)


def policy_name(policy: Policy) -> str:
    """`ns/name`, `name`, or `reserved:<x>` for Cilium's pseudo-policies; empty when nothing names it."""
    if policy.name:
        return f"{policy.namespace}/{policy.name}" if policy.namespace else policy.name
    name = namespace = ""
    for label in policy.labels or ():
        if label.startswith("reserved:io.cilium.policy.derived-from="):
            return "reserved:" + label.split("=", 1)[1]
        if label.startswith("k8s:io.cilium.k8s.policy.name="):
            name = label.split("=", 1)[1]
        elif label.startswith("k8s:io.cilium.k8s.policy.namespace="):
            namespace = label.split("=", 1)[1]
    if name:
        return f"{namespace}/{name}" if namespace else name
    return ""


_policy_cache: dict[bytes, tuple[str, ...]] = {}


def policy_names(*raws: bytes) -> tuple[str, ...]:
    """Sorted, de-duplicated policy names from one or more raw `*_allowed_by`/`*_denied_by` lists."""
    # JSON never holds a NUL byte: joining on it keeps the key unambiguous
    key = bytes(raws[0]) if len(raws) == 1 else b"\0".join([bytes(raw) for raw in raws])
    names = _policy_cache.get(key)
    if names is None:
        if len(_policy_cache) >= _PEER_CACHE_SIZE:
            _policy_cache.clear()
        names = _policy_cache[key] = _policy_names(raws)
    return names


def _policy_names(raws: tuple[bytes, ...]) -> tuple[str, ...]:
    names: set[str] = set()
    for raw in raws:
        if raw:
            for policy in _decode_policies(raw) or ():
                name = policy_name(policy)
                if name:
                    names.add(name)
    return tuple(sorted(names))
