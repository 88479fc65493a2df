"""Families the enrichment adds at scrape time (pipeline.self_metrics.collectors)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from exporter.exposition import MetricFamily
from exporter.kube.state import ClusterState
from exporter.kube.watch import Watcher


def policy_families(state: ClusterState) -> Iterator[MetricFamily]:
    info = MetricFamily(
        "networkpolicy_info", "gauge",
        "1 for every NetworkPolicy, CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, Calico NetworkPolicy "
        "(kind CalicoNetworkPolicy) and GlobalNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy and "
        "ClusterNetworkPolicy in the cluster (Kubernetes enrichment), with its resourceVersion and generation; "
        "`kind` tells policies of the same name apart.",
        ("policy", "kind", "policy_namespace", "policy_name", "resource_version", "generation"))
    changed = MetricFamily(
        "networkpolicy_last_change_timestamp_seconds", "gauge",
        "Latest server-recorded write to the policy: max(creationTimestamp, managedFields[].time); when the "
        "object carries neither, when the exporter saw its generation change.", ("policy", "kind"))
    for p in state.policies.values():  # replaced, never mutated: safe to iterate
        info.set(1, p.key, p.kind, p.namespace, p.name, p.resource_version, str(p.generation))
        if p.changed_at:
            changed.set(p.changed_at, p.key, p.kind)
    yield info
    yield changed


def watch_families(watchers: Mapping[str, Watcher]) -> Iterator[MetricFamily]:
    synced = MetricFamily("netpol_exporter_kubernetes_cache_synced", "gauge",
                          "1 once the cache holds a complete list of the kind (kept through API outages).", ("kind",))
    up = MetricFamily("netpol_exporter_kubernetes_watch_up", "gauge",
                      "1 while the watch of the kind is connected; 0 during API server outages (the last known "
                      "state is used meanwhile).", ("kind",))
    errors = MetricFamily("netpol_exporter_kubernetes_watch_errors", "counter",
                          "Failed list or watch requests (connection errors, timeouts, HTTP errors).", ("kind",))
    relists = MetricFamily("netpol_exporter_kubernetes_relists", "counter",
                           "Lists after the first one, forced by 410 Gone (expired watch or continue token).",
                           ("kind",))
    objects = MetricFamily("netpol_exporter_kubernetes_objects", "gauge", "Objects held in the cache.", ("kind",))
    served = MetricFamily("netpol_exporter_kubernetes_kind_served", "gauge",
                          "1 when the cluster serves the kind; 0 while an optional kind (Cilium, Calico or admin "
                          "policies) is not installed (looked for again every minute).", ("kind",))
    for kind, watcher in watchers.items():
        s = watcher.stats
        synced.set(1 if s.synced else 0, kind)
        up.set(1 if s.connected else 0, kind)
        errors.set(s.errors, kind)
        relists.set(s.relists, kind)
        objects.set(len(watcher.sink), kind)
        served.set(1 if s.served else 0, kind)
    yield from (synced, up, errors, relists, objects, served)
