"""What the enrichment knows about the cluster, fed by the watch threads.

Only what naming and attribution need is kept: per pod its namespace, name, labels, IPs and the
controller owner; per ReplicaSet the workload that owns it; namespace labels and parsed
NetworkPolicies, CiliumNetworkPolicies and CiliumClusterwideNetworkPolicies (in the engine's
PolicyIndex); per policy the few fields of `networkpolicy_info`.

Threading: the watch threads write under `lock`; the pod maps are read without it (single dict
lookups are atomic), the PolicyIndex is queried only under it (it is not thread-safe), and
`policies` is replaced, never mutated, so scrapes can iterate it while a watch thread writes.
A policy re-list (of one kind) builds a new PolicyIndex outside `lock` (writers serialize on
`_writers`), keeping the other kinds' parsed policies, and swaps it in, so the enricher never
waits for a thousand policies to parse.
`policy_generation` changes whenever anything attribution depends on changes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from exporter.kube.objects import MetaOnly, ObjectMeta, Pod
from exporter.netpol.attribution import PolicyIndex
from exporter.netpol.cilium import CiliumPolicy
from exporter.netpol.labels import Labels
from exporter.netpol.policy import DIRECTIONS
from exporter.timeparse import parse_rfc3339_ns

log = logging.getLogger("netpol_exporter.kube")

POLICY_KIND: Final = "NetworkPolicy"
TERMINAL_PHASES: Final = frozenset({"Succeeded", "Failed"})
# A CronJob names its Jobs `<cronjob>-<scheduled time in minutes since the epoch>`; accept times
# from late 2011 on (22,000,000 min), above every YYYYMMDD date, so `migrate-20240101` keeps its name.
_CRONJOB_JOB: Final = re.compile(r"^(.+)-([0-9]{8,9})$")
_CRONJOB_MINUTES: Final = range(22_000_000, 1_000_000_000)
_NO_WORKLOAD_OWNERS: Final = frozenset({"Node"})  # static pods' mirror: the pod name is the workload


class PodInfo:
    """One pod, reduced to what naming and attribution read."""

    __slots__ = ("ips", "labels", "name", "namespace", "owner_kind", "owner_name", "peer_name", "stamp")

    def __init__(self, namespace: str, name: str, labels: Labels, owner_kind: str, owner_name: str,
                 ips: tuple[str, ...]) -> None:
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.owner_kind = owner_kind
        self.owner_name = owner_name
        self.ips = ips
        # `ns/workload` from owner references (None: they do not tell), valid while stamp == rs_generation
        self.peer_name: str | None = None
        self.stamp = -1


@dataclass(frozen=True, slots=True)
class PolicyInfo:
    """One policy as `networkpolicy_info` and the zero-seeding see it."""

    key: str  # "ns/name" ("name" for a CCNP), the contract's policy value
    namespace: str
    name: str
    resource_version: str
    generation: int
    changed_at: float  # seconds since the epoch (see last_change_time)
    directions: tuple[str, ...]  # the directions it isolates: "ingress", "egress"
    kind: str = POLICY_KIND  # the `kind` label of networkpolicy_info
    source_kind: str = ""  # the API kind of a Calico / admin policy (kind is CalicoNetworkPolicy for Calico's NP)


def controller_owner(meta: ObjectMeta) -> tuple[str, str]:
    """(kind, name) of the controlling owner reference, ("", "") when none."""
    for ref in meta.owner_references or ():
        if ref.controller:
            return ref.kind, ref.name
    return "", ""


def cronjob_of_job(job: str) -> str | None:
    m = _CRONJOB_JOB.match(job)
    if m and int(m.group(2)) in _CRONJOB_MINUTES:
        return m.group(1)
    return None


def _rfc3339_seconds(text: Any) -> float:
    if not isinstance(text, str) or not text:
        return 0.0
    try:
        return parse_rfc3339_ns(text) / 1e9
    except ValueError:
        return 0.0


def last_change_time(meta: dict[str, Any]) -> float:
    """The latest server-recorded write: max(creationTimestamp, managedFields[].time); 0 when absent."""
    latest = _rfc3339_seconds(meta.get("creationTimestamp"))
    for entry in meta.get("managedFields") or ():
        if isinstance(entry, dict):
            latest = max(latest, _rfc3339_seconds(entry.get("time")))
    return latest


def pod_info(pod: Pod) -> PodInfo | None:
    meta = pod.metadata
    if not meta.name or not meta.namespace:
        return None
    kind, owner = controller_owner(meta)
    status = pod.status
    ips: tuple[str, ...] = ()
    if not pod.spec.host_network and status.phase not in TERMINAL_PHASES:
        # hostNetwork pods share the node's address; a finished pod's address may be reused
        found = [p.ip for p in status.pod_ips or () if p.ip] or ([status.pod_ip] if status.pod_ip else [])
        ips = tuple(found)
    return PodInfo(meta.namespace, meta.name, Labels(meta.labels or {}), kind, owner, ips)


class ClusterState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._writers = threading.Lock()  # serializes the namespace and policy writers
        self.index = PolicyIndex()  # query only under `lock`
        self.namespace_labels: dict[str, dict[str, str]] = {}  # to rebuild the index on a policy re-list
        self.pods_by_name: dict[tuple[str, str], PodInfo] = {}
        self.pods_by_ip: dict[str, PodInfo] = {}
        self.rs_workload: dict[tuple[str, str], str] = {}  # (ns, replicaset) → owning workload
        self.namespaces: set[str] = set()
        # replaced on every change (copy-on-write); keyed by PolicyIndex.invalid_key: the policy value for a
        # NetworkPolicy, "<Kind> <value>" for the Cilium kinds
        self.policies: dict[str, PolicyInfo] = {}
        self.policy_generation = 0  # bumped when policies or namespace labels change
        self.rs_generation = 0  # bumped when ReplicaSets change (PodInfo.peer_name depends on them)
        self.on_policies_changed: list[Callable[[], None]] = []

    # -- naming ---------------------------------------------------------------------------
    def workload_of(self, pod: PodInfo) -> str | None:
        """The workload from owner references; None when they do not tell (bare pod, RS not known)."""
        kind, owner = pod.owner_kind, pod.owner_name
        if not kind or kind in _NO_WORKLOAD_OWNERS:
            return None
        if kind == "ReplicaSet":
            return self.rs_workload.get((pod.namespace, owner))
        if kind == "Job":
            return cronjob_of_job(owner) or owner
        return owner  # StatefulSet, DaemonSet, ReplicationController, custom controllers

    def peer_name_of(self, pod: PodInfo) -> str | None:
        """`ns/workload` from owner references, memoized on the PodInfo until ReplicaSets change."""
        generation = self.rs_generation
        if pod.stamp != generation:
            workload = self.workload_of(pod)
            pod.peer_name = f"{pod.namespace}/{workload}" if workload else None
            pod.stamp = generation
        return pod.peer_name

    # -- pods -----------------------------------------------------------------------------
    def replace_pods(self, pods: Iterable[Pod]) -> None:
        by_name: dict[tuple[str, str], PodInfo] = {}
        by_ip: dict[str, PodInfo] = {}
        for pod in pods:
            info = pod_info(pod)
            if info is not None:
                by_name[(info.namespace, info.name)] = info
                for ip in info.ips:
                    by_ip[ip] = info
        with self.lock:
            self.pods_by_name, self.pods_by_ip = by_name, by_ip

    def upsert_pod(self, pod: Pod) -> None:
        info = pod_info(pod)
        if info is None:
            return
        with self.lock:
            self._forget_ips(self.pods_by_name.get((info.namespace, info.name)))
            self.pods_by_name[(info.namespace, info.name)] = info
            for ip in info.ips:
                self.pods_by_ip[ip] = info

    def delete_pod(self, pod: Pod) -> None:
        meta = pod.metadata
        with self.lock:
            self._forget_ips(self.pods_by_name.pop((meta.namespace, meta.name), None))

    def _forget_ips(self, old: PodInfo | None) -> None:
        if old is None:
            return
        for ip in old.ips:
            if self.pods_by_ip.get(ip) is old:  # the address may already belong to a newer pod
                del self.pods_by_ip[ip]

    # -- replicasets ----------------------------------------------------------------------
    @staticmethod
    def _rs_entry(rs: MetaOnly) -> tuple[tuple[str, str], str]:
        meta = rs.metadata
        _kind, owner = controller_owner(meta)
        return (meta.namespace, meta.name), owner or meta.name

    def replace_replicasets(self, items: Iterable[MetaOnly]) -> None:
        table = dict(self._rs_entry(rs) for rs in items)
        with self.lock:
            self.rs_workload = table
            self.rs_generation += 1

    def upsert_replicaset(self, rs: MetaOnly) -> None:
        key, workload = self._rs_entry(rs)
        with self.lock:
            if self.rs_workload.get(key) != workload:
                self.rs_workload[key] = workload
                self.rs_generation += 1

    def delete_replicaset(self, rs: MetaOnly) -> None:
        with self.lock:
            self.rs_workload.pop((rs.metadata.namespace, rs.metadata.name), None)
            self.rs_generation += 1

    # -- namespaces -----------------------------------------------------------------------
    def replace_namespaces(self, items: Iterable[MetaOnly]) -> None:
        labels = {ns.metadata.name: ns.metadata.labels or {} for ns in items}
        with self._writers, self.lock:
            for name, values in labels.items():
                self.index.set_namespace(name, values)
            for gone in self.namespaces - labels.keys():
                self.index.delete_namespace(gone)
            self.namespace_labels = labels
            self.namespaces = set(labels)
            self.policy_generation += 1

    def upsert_namespace(self, ns: MetaOnly) -> None:
        name, labels = ns.metadata.name, ns.metadata.labels or {}
        with self._writers, self.lock:
            self.index.set_namespace(name, labels)
            self.namespace_labels[name] = labels
            self.namespaces.add(name)
            self.policy_generation += 1

    def delete_namespace(self, ns: MetaOnly) -> None:
        with self._writers, self.lock:
            self.index.delete_namespace(ns.metadata.name)
            self.namespace_labels.pop(ns.metadata.name, None)
            self.namespaces.discard(ns.metadata.name)
            self.policy_generation += 1

    # -- policies (every kind) ------------------------------------------------------------
    @staticmethod
    def _index_policy(index: PolicyIndex, obj: dict[str, Any], policies: dict[str, PolicyInfo], now: float,
                      kind: str = POLICY_KIND) -> None:
        """Feed one policy to the engine and `policies` (the caller guards `index`)."""
        meta = obj.get("metadata") or {}
        ns, name = _policy_identity(obj, kind)
        key = PolicyIndex.invalid_key(kind, ns, name)
        parsed = index.upsert_policy(obj, kind)
        if parsed is None:
            log.warning("%s %s is not valid and is ignored for attribution: %s", kind, key, index.invalid.get(key))
        directions = tuple(d for d in DIRECTIONS if parsed is not None and _isolates_somewhere(parsed, d))
        generation = int(meta.get("generation") or 0)
        previous = policies.get(key)
        changed_at = last_change_time(meta)
        if not changed_at:  # no server timestamps: when this exporter saw the generation change
            same = previous is not None and previous.generation == generation
            changed_at = previous.changed_at if same and previous is not None else now
        value = f"{ns}/{name}" if ns else name
        policies[key] = PolicyInfo(value, ns, name, str(meta.get("resourceVersion") or ""), generation,
                                   changed_at, directions, kind)

    def replace_policies(self, items: Iterable[dict[str, Any]], kind: str = POLICY_KIND) -> None:
        """A complete list of one kind (an absent CRD: an empty list)."""
        now = time.time()
        with self._writers:  # build aside; readers keep using the current index meanwhile
            index = PolicyIndex()
            for name, labels in self.namespace_labels.items():
                index.set_namespace(name, labels)
            for policy in self.index.all_policies():  # the other kinds stay as they are
                if policy.kind != kind:
                    index.add_parsed(policy)
            old = self.policies
            fresh: dict[str, PolicyInfo] = {k: v for k, v in old.items() if v.kind != kind}
            for obj in items:
                key = _policy_key(obj, kind)
                previous = old.get(key)
                if previous is not None:
                    fresh[key] = previous  # keeps changed_at for objects without timestamps
                self._index_policy(index, obj, fresh, now, kind)
            for key, reason in self.index.invalid.items():  # invalid objects of the other kinds stay listed
                if not key.startswith(f"{kind} ") and (kind != POLICY_KIND or " " in key):
                    index.invalid.setdefault(key, reason)
            with self.lock:
                self.index = index
                self.policies = fresh
                self.policy_generation += 1
        self._notify()

    def upsert_policy(self, obj: dict[str, Any], kind: str = POLICY_KIND) -> None:
        with self._writers, self.lock:
            policies = dict(self.policies)
            self._index_policy(self.index, obj, policies, time.time(), kind)
            self.policies = policies
            self.policy_generation += 1
        self._notify()

    def delete_policy(self, obj: dict[str, Any], kind: str = POLICY_KIND) -> None:
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        with self._writers, self.lock:
            self.index.delete_policy(ns, name, kind)
            policies = dict(self.policies)
            policies.pop(_policy_key(obj, kind), None)
            self.policies = policies
            self.policy_generation += 1
        self._notify()

    # -- Calico policies and the AdminNetworkPolicy family: info and zero-seeding only ------
    @staticmethod
    def _tiered_info(obj: dict[str, Any], previous: dict[str, PolicyInfo], now: float) -> tuple[str, PolicyInfo]:
        """(key, info) of a Calico / admin policy, named as Calico's flows name it (the tiered engine's
        label); an object the engine rejects keeps `ns/name` and isolates nothing."""
        from exporter.netpol.calico import PolicySetError, load_policies

        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        kind = str(obj.get("kind"))
        try:
            policy = load_policies([obj], cni="calico").policies[0]
            value, info_kind = policy.label, policy.info_kind
            directions = tuple(d for d, t in (("ingress", "Ingress"), ("egress", "Egress")) if t in policy.types)
        except (PolicySetError, IndexError) as exc:
            log.warning("%s %s is not valid and is ignored: %s", kind, f"{ns}/{name}" if ns else name, exc)
            value = f"{ns}/{name}" if ns else name
            info_kind = "CalicoNetworkPolicy" if kind == "NetworkPolicy" else kind
            directions = ()
        key = f"{info_kind} {value}"
        generation = int(meta.get("generation") or 0)
        changed_at = last_change_time(meta)
        old = previous.get(key)
        if not changed_at:
            changed_at = old.changed_at if old is not None and old.generation == generation else now
        return key, PolicyInfo(value, ns, name, str(meta.get("resourceVersion") or ""), generation, changed_at,
                               directions, info_kind, kind)

    def replace_tiered_policies(self, items: Iterable[dict[str, Any]], kind: str) -> None:
        """A complete list of one Calico / admin kind (`kind`: its API kind)."""
        now = time.time()
        with self._writers:
            old = self.policies
            fresh = {k: v for k, v in old.items() if v.source_kind != kind}
            for obj in items:
                key, info = self._tiered_info(obj, old, now)
                fresh[key] = info
            with self.lock:
                self.policies = fresh
        self._notify()

    def upsert_tiered_policy(self, obj: dict[str, Any]) -> None:
        with self._writers, self.lock:
            policies = dict(self.policies)
            key, info = self._tiered_info(obj, policies, time.time())
            stale = [k for k, v in policies.items() if v.source_kind == info.source_kind
                     and (v.namespace, v.name) == (info.namespace, info.name) and k != key]
            for k in stale:  # renamed by a tier change
                del policies[k]
            policies[key] = info
            self.policies = policies
        self._notify()

    def delete_tiered_policy(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ns, name, kind = str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(obj.get("kind"))
        with self._writers, self.lock:
            self.policies = {k: v for k, v in self.policies.items()
                             if not (v.source_kind == kind and v.namespace == ns and v.name == name)}
        self._notify()

    def _notify(self) -> None:
        for callback in self.on_policies_changed:
            callback()


def _policy_identity(obj: dict[str, Any], kind: str) -> tuple[str, str]:
    """(namespace, name) of a policy object; a CiliumClusterwideNetworkPolicy has no namespace."""
    meta = obj.get("metadata") or {}
    ns = "" if kind == "CiliumClusterwideNetworkPolicy" else str(meta.get("namespace") or "")
    return ns, str(meta.get("name") or "")


def _policy_key(obj: dict[str, Any], kind: str = POLICY_KIND) -> str:
    """The key of a policy in `ClusterState.policies` and in the index's `invalid`."""
    return PolicyIndex.invalid_key(kind, *_policy_identity(obj, kind))


def _isolates_somewhere(policy: Any, direction: str) -> bool:
    """Whether the policy puts the pods it selects in default deny for `direction`."""
    if isinstance(policy, CiliumPolicy):
        return any(r.subject is not None and r.isolates(direction) for r in policy.rules)
    return bool(policy.affects(direction))
