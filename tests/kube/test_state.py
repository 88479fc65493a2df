"""ClusterState and Enricher details that need no API server."""

from __future__ import annotations

import msgspec
import pytest

from exporter.kube.enrich import Enricher, hubble_pod_labels
from exporter.kube.objects import MetaOnly, Pod
from exporter.kube.state import ClusterState, cronjob_of_job, last_change_time
from exporter.model import CALICO_FLOW, HUBBLE_VERDICT, Family, FlowRecord, Peer
from tests.kube.cluster import DEFAULT_DENY_ALL, WEB_INGRESS, owner, pod


def as_pod(obj: dict[str, object]) -> Pod:
    return msgspec.convert(obj, Pod)


@pytest.mark.parametrize(("job", "cronjob"), [
    ("nightly-backup-29400000", "nightly-backup"),  # scheduled time in minutes (2025)
    ("report-28000000", "report"),
    ("migrate-20240101", None),  # a date, not a CronJob schedule
    ("job-1", None),
    ("plain", None),
])
def test_cronjob_of_job(job: str, cronjob: str | None) -> None:
    assert cronjob_of_job(job) == cronjob


def test_a_late_deletion_does_not_unmap_a_reused_address() -> None:
    state = ClusterState()
    old = as_pod(pod("a", "old", {}, "10.0.0.1"))
    state.upsert_pod(old)
    state.upsert_pod(as_pod(pod("b", "new", {}, "10.0.0.1")))
    state.delete_pod(old)
    assert state.pods_by_ip["10.0.0.1"].name == "new"


def test_finished_and_host_network_pods_keep_their_name_but_not_their_address() -> None:
    state = ClusterState()
    state.upsert_pod(as_pod(pod("a", "done", {}, "10.0.0.2", owner("Job", "done"), phase="Succeeded")))
    state.upsert_pod(as_pod(pod("a", "agent", {}, "192.168.0.1", host_network=True)))
    assert set(state.pods_by_name) == {("a", "done"), ("a", "agent")}
    assert state.pods_by_ip == {}
    # an IP-less pod (pending) updates to its address later
    state.upsert_pod(as_pod(pod("a", "p", {}, "")))
    state.upsert_pod(as_pod(pod("a", "p", {}, "10.0.0.3")))
    assert state.pods_by_ip["10.0.0.3"].name == "p"


def test_last_change_time_takes_the_latest_write() -> None:
    meta = {"creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"time": "2026-01-02T00:00:00Z"}, {"time": "2026-01-01T12:00:00Z"}, {}]}
    assert last_change_time(meta) == 1767312000.0
    assert last_change_time({}) == 0.0


def test_hubble_identity_labels_become_pod_labels() -> None:
    labels = ("k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop", "k8s:io.cilium.k8s.policy.cluster=default",
              "k8s:io.cilium.k8s.namespace.labels.team=t", "reserved:host", "k8s:tier=")
    assert dict(hubble_pod_labels(labels) or {}) == {"app": "web", "tier": ""}
    assert hubble_pod_labels(("reserved:world",)) is None


def drop(direction: str, src: Peer, dst: Peer, reason: str = "POLICY_DENIED") -> FlowRecord:
    return FlowRecord(HUBBLE_VERDICT, Family.DROPPED, (), direction, src, dst, "80", "TCP", reason)


def test_attribution_cache_follows_policy_changes() -> None:
    state = ClusterState()
    enricher = Enricher(state)
    src = Peer("monitoring/prometheus", "monitoring", "10.0.1.9", "prometheus-0")
    dst = Peer("shop/web", "shop", "10.0.0.5", "web-1", ("k8s:app=web",))  # not in the cache: Hubble labels
    assert enricher(drop("ingress", src, dst)).policies == ()
    state.upsert_policy(DEFAULT_DENY_ALL)
    assert enricher(drop("ingress", src, dst)).policies == ("shop/default-deny-all",)
    state.upsert_policy(WEB_INGRESS)
    assert enricher(drop("ingress", src, dst)).policies == ("shop/web-ingress",)
    assert enricher(drop("egress", dst, src)).policies == ("shop/default-deny-all",)
    # other reasons and named drops are left alone
    assert enricher(drop("ingress", src, dst, reason="POLICY_DENY")).policies == ()
    named = drop("ingress", src, dst)
    named.policies = ("shop/explicit",)
    assert enricher(named).policies == ("shop/explicit",)
    state.delete_policy(WEB_INGRESS)
    state.delete_policy(DEFAULT_DENY_ALL)
    assert enricher(drop("ingress", src, dst)).policies == ()


def test_an_aggregated_replicaset_name_is_named_after_its_deployment() -> None:
    """Calico's `*_name_aggr` of a Deployment's pods is the ReplicaSet name (when a decoder passes it as `pod`)."""
    state = ClusterState()
    state.upsert_replicaset(msgspec.convert({"metadata": {"name": "coredns-576cbf47c7", "namespace": "kube-system",
                                                          "ownerReferences": owner("Deployment", "dns")}}, MetaOnly))
    enricher = Enricher(state)
    peer = Peer("kube-system/coredns", "kube-system", "", "coredns-576cbf47c7")
    record = FlowRecord(CALICO_FLOW, Family.ALLOWED, (), "ingress", peer, peer, "53", "UDP", "")
    assert enricher(record).source.name == "kube-system/dns"
