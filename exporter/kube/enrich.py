"""The FlowCounter enricher: workload names from owner references, IP → pod, policy attribution.

Attribution follows the contract: a default-deny drop names the isolating policies; an unnamed
`POLICY_DENY` drop or audit names the policies whose deny rules match (CiliumNetworkPolicies and
CiliumClusterwideNetworkPolicies); an unnamed allowed verdict with `policy_match_type` ≥ 1 names
the allowing policies. Nothing is named when the engine finds none.

Called on the counting hot path (the pipeline's thread), after pairing and before labels are
computed. Lookups are single dict reads of the watch-fed caches; the PolicyIndex is consulted
under the state lock only on a miss of the attribution cache, which is dropped whenever the
policies or namespace labels change (`ClusterState.policy_generation`).
"""

from __future__ import annotations

from typing import Final

from exporter.counting import DEFAULT_DENY_REASON, UNKNOWN_POLICY
from exporter.kube.state import ClusterState, PodInfo
from exporter.model import CALICO_FLOW, Family, FlowRecord, Peer
from exporter.naming import UNKNOWN, WORLD, pod_peer_name, workload_from_pod_name
from exporter.netpol.cilium import CLUSTER_ENTITIES, NOT_POD_LABEL_PREFIXES, parse_ip
from exporter.netpol.evaluator import Endpoint
from exporter.netpol.labels import Labels
from exporter.netpol.policy import EGRESS, INGRESS

# Non-pod peers that may really be a pod the flow source could not name (no identity, masked fields).
_ADDRESS_ONLY: Final = frozenset({WORLD, UNKNOWN})
_CACHE_LIMIT: Final = 65536
_ALLOWED: Final = Family.ALLOWED
_DENY_RULE_REASON: Final = "POLICY_DENY"

AttributionKey = tuple[str, Labels, str]


def hubble_pod_labels(labels: tuple[str, ...]) -> Labels | None:
    """Pod labels from Hubble's `k8s:key=value` identity labels; None when there are none."""
    out: dict[str, str] = {}
    for label in labels:
        if label.startswith("k8s:"):
            key, _, value = label[4:].partition("=")
            if not key.startswith(NOT_POD_LABEL_PREFIXES):
                out[key] = value
    return Labels(out) if out else None


class Enricher:
    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._named: dict[AttributionKey, tuple[str, ...]] = {}
        self._generation = -1
        self._hubble_labels: dict[tuple[str, ...], Labels | None] = {}
        self._decided: dict[tuple[object, ...], tuple[str, ...]] = {}  # deny-rule / allow naming
        self._decided_generation = -1
        self.attributed = 0  # records given policy names (default-deny drops, deny rules, allows)

    def __call__(self, record: FlowRecord) -> FlowRecord:
        src, src_pod = self._resolve(record.source)
        dst, dst_pod = self._resolve(record.destination)
        record.source, record.destination = src, dst
        if record.kind == CALICO_FLOW:
            return record
        verdict = record.verdict
        named: tuple[str, ...] = ()
        if verdict is not _ALLOWED and not record.policies and record.reason == DEFAULT_DENY_REASON:
            named = self._default_deny(record.direction, src, src_pod, dst, dst_pod)
        elif ((verdict is not _ALLOWED and not record.policies and record.reason == _DENY_RULE_REASON)
              or (verdict is _ALLOWED and record.match_type >= 1
                  and record.policies in ((), (UNKNOWN_POLICY,)))):
            named = self._decided_names(record, src, src_pod, dst, dst_pod)
        if named:
            record.policies = named
            self.attributed += 1
        return record

    # -- peers ----------------------------------------------------------------------------
    def _resolve(self, peer: Peer) -> tuple[Peer, PodInfo | None]:
        """The peer named from the pod it is (owner references), and that pod when known."""
        state = self.state
        namespace = peer.namespace
        info = None
        if namespace:
            if peer.pod:
                info = state.pods_by_name.get((namespace, peer.pod))
            if info is None and peer.ip:
                info = state.pods_by_ip.get(peer.ip)
                if info is not None and info.namespace != namespace:
                    info = None
        elif peer.ip and peer.name in _ADDRESS_ONLY:
            info = state.pods_by_ip.get(peer.ip)  # an address the flow source could not name
        if info is None:
            if namespace and peer.pod:
                # Calico aggregates a Deployment's pods under their ReplicaSet's name (`web-7d4b9c8f5b-*`)
                workload = state.rs_workload.get((namespace, peer.pod))
                if workload is not None and peer.name != (rs_name := pod_peer_name(namespace, workload)):
                    return Peer(rs_name, namespace, peer.ip, peer.pod, peer.labels), None
            return peer, None
        name = state.peer_name_of(info)
        if name is None:
            if namespace:
                return peer, info  # no owner tells: the heuristics stand
            name = pod_peer_name(info.namespace, workload_from_pod_name(info.name))
        if name == peer.name and peer.pod:
            return peer, info
        return Peer(name, info.namespace, peer.ip, info.name, peer.labels), info

    # -- default deny ---------------------------------------------------------------------
    def _pod_labels(self, peer: Peer, info: PodInfo | None) -> Labels | None:
        if info is not None:
            return info.labels
        if not peer.namespace or not peer.labels:
            return None
        cache = self._hubble_labels
        labels = cache.get(peer.labels)
        if labels is None and peer.labels not in cache:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            labels = cache[peer.labels] = hubble_pod_labels(peer.labels)
        return labels

    def _named_at(self, peer: Peer, info: PodInfo | None, direction: str) -> tuple[str, ...]:
        """The policies to name for a drop at this pod in this direction (() when not known)."""
        labels = self._pod_labels(peer, info)
        if labels is None:
            return ()
        state = self.state
        if state.policy_generation != self._generation:
            self._named = {}
        key = (peer.namespace, labels, direction)
        named = self._named.get(key)
        if named is None:
            with state.lock:
                generation = state.policy_generation
                named = state.index.attribute(peer.namespace, labels, direction, None, "").named
            if generation != self._generation:
                self._named, self._generation = {}, generation
            if len(self._named) >= _CACHE_LIMIT:
                self._named.clear()
            self._named[key] = named
        return named

    # -- deny rules and allows: the full evaluation, the peer included -------------------------
    def _endpoint(self, peer: Peer, info: PodInfo | None) -> Endpoint | None:
        if not peer.namespace:
            if peer.name in CLUSTER_ENTITIES or peer.name == WORLD:
                return Endpoint(key=peer.name, namespace=None, ip=parse_ip(peer.ip), entity=peer.name)
            return None
        labels = self._pod_labels(peer, info)
        if labels is None:
            return None
        return self.state.index.pod_endpoint(peer.namespace, labels, peer.ip)

    def _decided_names(self, record: FlowRecord, src: Peer, src_pod: PodInfo | None, dst: Peer,
                       dst_pod: PodInfo | None) -> tuple[str, ...]:
        direction = record.direction
        if direction not in (INGRESS, EGRESS):
            return ()
        state = self.state
        src_labels, dst_labels = self._pod_labels(src, src_pod), self._pod_labels(dst, dst_pod)
        if state.policy_generation != self._decided_generation:
            self._decided, self._decided_generation = {}, state.policy_generation
        key = (record.verdict, direction, src.namespace, src_labels, src.name, src.ip,
               dst.namespace, dst_labels, dst.name, dst.ip, record.protocol, record.port_or_type)
        named = self._decided.get(key)
        if named is not None:
            return named
        with state.lock:
            source, destination = self._endpoint(src, src_pod), self._endpoint(dst, dst_pod)
            pod, other = (destination, source) if direction == INGRESS else (source, destination)
            named = ()
            if pod is not None and other is not None and pod.namespace is not None:
                port = record.port_or_type if record.protocol else None
                side = state.index.decide(pod, other, direction, port, record.protocol)
                named = side.allowing if record.verdict is _ALLOWED else side.denying
        if len(self._decided) >= _CACHE_LIMIT:
            self._decided.clear()
        self._decided[key] = named
        return named

    def _default_deny(self, direction: str, src: Peer, src_pod: PodInfo | None, dst: Peer,
                      dst_pod: PodInfo | None) -> tuple[str, ...]:
        if direction == INGRESS:
            return self._named_at(dst, dst_pod, INGRESS)
        if direction == EGRESS:
            return self._named_at(src, src_pod, EGRESS)
        # Direction unknown (field-masked exports): name the policies only when exactly one side is isolated.
        at_dst = self._named_at(dst, dst_pod, INGRESS)
        at_src = self._named_at(src, src_pod, EGRESS)
        if bool(at_dst) != bool(at_src):
            return at_dst or at_src
        return ()
