"""CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy through the enrichment, against the fake API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.kube.attach import KubeEnrichment, attach
from exporter.kube.watch import WatchTiming
from exporter.model import Family
from exporter.pipeline import Pipeline
from tests.core.flows import hubble_line
from tests.kube.cluster import OPEN_DENY, populate
from tests.kube.fake_apiserver import FakeAPIServer
from tests.kube.test_enrichment import NO_ENV, config_for, count, dropped, exposition, wait_for

FAST = WatchTiming(page_size=2, watch_timeout_s=5, connect_timeout_s=2, read_timeout_s=5,
                   backoff_initial_s=0.05, backoff_max_s=0.4, absent_recheck_s=0.2)
CNPS, CCNPS = "ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies"


def cilium(kind: str, name: str, spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "managedFields": [{"manager": "kubectl", "operation": "Update",
                                                             "time": "2026-11-28T13:00:00Z"}]}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, "spec": spec}  # list items and watch objects as the server sends them


WEB_CNP = cilium("CiliumNetworkPolicy", "web-cnp", {
    "endpointSelector": {"matchLabels": {"app": "web"}},
    "ingress": [{"fromEndpoints": [{"matchLabels": {"io.kubernetes.pod.namespace": "monitoring",
                                                    "app": "prometheus"}}],
                 "toPorts": [{"ports": [{"port": "9090", "protocol": "TCP"}]}]}],
    "ingressDeny": [{"fromEndpoints": [{"matchLabels": {"io.kubernetes.pod.namespace": "monitoring"}}],
                     "toPorts": [{"ports": [{"port": "9999", "protocol": "TCP"}]}]}],
}, "shop")
LOCKDOWN = cilium("CiliumClusterwideNetworkPolicy", "egress-lockdown", {
    "endpointSelector": {"matchLabels": {"io.kubernetes.pod.namespace": "open"}},
    "egress": [{"toEntities": ["cluster"]}],
})
OPEN_HOUSE = cilium("CiliumNetworkPolicy", "open-house", {  # allows, never isolates
    "endpointSelector": {},
    "enableDefaultDeny": {"ingress": False},
    "ingress": [{"fromEntities": ["cluster"], "toPorts": [{"ports": [{"port": "22"}]}]}],
}, "open")

PROMETHEUS = {"ID": 11, "identity": 1201, "namespace": "monitoring", "pod_name": "prometheus-0",
              "labels": ["k8s:app=prometheus", "k8s:io.kubernetes.pod.namespace=monitoring"]}
WEB = {"ID": 12, "identity": 1202, "namespace": "shop", "pod_name": "web-7d4b9c8f5b-x2x9z",
       "labels": ["k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop"]}
SHELL = {"ID": 14, "identity": 1204, "namespace": "open", "pod_name": "shell-6b7c8d9f5d-k2m4p",
         "labels": ["k8s:app=shell", "k8s:io.kubernetes.pod.namespace=open"]}
WORLD = {"identity": 2, "labels": ["reserved:world"]}


def tcp(port: int) -> dict[str, Any]:
    return {"TCP": {"source_port": 40000, "destination_port": port}}


@pytest.fixture
def server() -> Iterator[FakeAPIServer]:
    srv = FakeAPIServer()
    populate(srv.cluster)
    srv.cluster.apply("networkpolicies", OPEN_DENY)
    srv.cluster.apply(CNPS, WEB_CNP)
    srv.cluster.apply(CNPS, OPEN_HOUSE)
    srv.cluster.apply(CCNPS, LOCKDOWN)
    srv.start()
    yield srv
    srv.stop()


def start(server: FakeAPIServer, tmp_path: Path) -> tuple[Pipeline, KubeEnrichment]:
    pipeline = Pipeline(config_for(server, tmp_path))
    enrichment = attach(pipeline, env=NO_ENV, timing=FAST)
    assert enrichment is not None
    enrichment.start_threads()
    assert enrichment.wait_synced(10), enrichment.describe()
    return pipeline, enrichment


def test_cilium_policies_name_drops_and_allows_from_the_api(server: FakeAPIServer, tmp_path: Path) -> None:
    pipeline, enrichment = start(server, tmp_path)
    try:
        count(pipeline, [
            # default deny at web: web-ingress (NP) and web-cnp (CNP) both select app=web: a tie, both named
            hubble_line(verdict="DROPPED", src=PROMETHEUS, dst=WEB, src_ip="10.0.1.9", dst_ip="10.0.0.5",
                        l4=tcp(7000), reason="POLICY_DENIED"),
            # a CNP deny rule, unnamed by Hubble
            hubble_line(verdict="DROPPED", src=PROMETHEUS, dst=WEB, src_ip="10.0.1.9", dst_ip="10.0.0.5",
                        l4=tcp(9999), reason="POLICY_DENY"),
            # a CCNP selecting by namespace isolates egress of the `open` namespace
            hubble_line(verdict="DROPPED", direction="EGRESS", src=SHELL, dst=WORLD, src_ip="10.0.2.3",
                        dst_ip="203.0.113.9", l4=tcp(443), reason="POLICY_DENIED"),
            # an NP isolates `open` for ingress; the CNP beside it opts out of default deny
            hubble_line(verdict="DROPPED", src=PROMETHEUS, dst=SHELL, src_ip="10.0.1.9", dst_ip="10.0.2.3",
                        l4=tcp(80), reason="POLICY_DENIED"),
            # allowed, unnamed, policy_match_type 3: the allowing CNP (cross-namespace fromEndpoints)
            hubble_line(src=PROMETHEUS, dst=WEB, src_ip="10.0.1.9", dst_ip="10.0.0.5", l4=tcp(9090),
                        policy_match_type=3),
            # an audit (policy audit mode) at web: named like a default-deny drop
            hubble_line(verdict="AUDIT", src=PROMETHEUS, dst=WEB, src_ip="10.0.1.9", dst_ip="10.0.0.5", l4=tcp(7001)),
            # allowed through the non-isolating CNP
            hubble_line(src=PROMETHEUS, dst=SHELL, src_ip="10.0.1.9", dst_ip="10.0.2.3", l4=tcp(22),
                        policy_match_type=1),
        ])
        series = {(k[0], k[4], k[6], k[8]): v for k, v in dropped(pipeline).items() if v}
        assert series == {
            ("shop/web-cnp,shop/web-ingress", "shop/storefront", "7000", "POLICY_DENIED"): 1,
            ("shop/web-cnp", "shop/storefront", "9999", "POLICY_DENY"): 1,
            ("egress-lockdown", "world", "443", "POLICY_DENIED"): 1,
            ("open/deny-ingress", "open/shell", "80", "POLICY_DENIED"): 1,
        }
        allowed = {(k[0], k[4], k[6]): entry[0] for k, entry in pipeline.stores[Family.ALLOWED].series.items()}
        assert allowed == {("shop/web-cnp", "shop/storefront", "9090"): 1, ("open/open-house", "open/shell", "22"): 1}
        audit = {(k[0], k[6]): entry[0] for k, entry in pipeline.stores[Family.AUDIT].series.items()}
        assert audit == {("shop/web-cnp,shop/web-ingress", "7001"): 1}
        text = exposition(pipeline)
        assert ('networkpolicy_info{policy="shop/web-cnp",kind="CiliumNetworkPolicy",policy_namespace="shop",'
                'policy_name="web-cnp",') in text
        assert ('networkpolicy_info{policy="egress-lockdown",kind="CiliumClusterwideNetworkPolicy",'
                'policy_namespace="",policy_name="egress-lockdown",') in text
        assert ('networkpolicy_last_change_timestamp_seconds{policy="egress-lockdown",'
                'kind="CiliumClusterwideNetworkPolicy"} 1795870800') in text
        # zero-seeded: the directions each policy isolates (open-house isolates nothing)
        enrichment.seed()
        seeded = {(k[0], k[1]) for k in dropped(pipeline)}
        assert {("shop/web-cnp", "ingress"), ("egress-lockdown", "egress")} <= seeded
        assert not any(k[0] == "open/open-house" for k in seeded)
        assert 'netpol_exporter_kubernetes_kind_served{kind="ciliumnetworkpolicies"} 1' in text
    finally:
        enrichment.close()


def test_absent_crds_are_not_an_error_and_appearing_later_is_picked_up(server: FakeAPIServer,
                                                                      tmp_path: Path) -> None:
    server.cluster.unserved = {CNPS, CCNPS}
    pipeline, enrichment = start(server, tmp_path)
    try:
        text = exposition(pipeline)
        assert 'netpol_exporter_kubernetes_kind_served{kind="ciliumnetworkpolicies"} 0' in text
        assert 'netpol_exporter_kubernetes_cache_synced{kind="ciliumclusterwidenetworkpolicies"} 1' in text
        assert enrichment.watchers[CNPS].stats.errors == 0
        assert "shop/web-cnp" not in text
        server.cluster.unserved = set()  # the CRDs get installed
        wait_for(lambda: "CiliumNetworkPolicy shop/web-cnp" in enrichment.state.policies, what="the CNP")
        wait_for(lambda: "CiliumClusterwideNetworkPolicy egress-lockdown" in enrichment.state.policies,
                 what="the CCNP")
        assert enrichment.describe()["kinds"][CNPS]["served"] is True
        server.cluster.apply(CNPS, cilium("CiliumNetworkPolicy", "late", {"endpointSelector": {}, "egress": [{}]},
                                          "shop"))
        wait_for(lambda: "CiliumNetworkPolicy shop/late" in enrichment.state.policies, what="a watched CNP")
        server.cluster.delete(CNPS, "shop", "late")
        wait_for(lambda: "CiliumNetworkPolicy shop/late" not in enrichment.state.policies, what="its deletion")
        # NetworkPolicies were never disturbed by the Cilium kinds' re-lists
        assert "shop/web-ingress" in enrichment.state.policies
    finally:
        enrichment.close()


def test_an_np_and_a_cnp_of_the_same_name_are_two_policies(server: FakeAPIServer, tmp_path: Path) -> None:
    server.cluster.apply(CNPS, cilium("CiliumNetworkPolicy", "web-ingress", {"endpointSelector": {}, "ingress": [{}]},
                                      "shop"))
    pipeline, enrichment = start(server, tmp_path)
    try:
        text = exposition(pipeline)
        assert 'networkpolicy_info{policy="shop/web-ingress",kind="NetworkPolicy"' in text
        assert 'networkpolicy_info{policy="shop/web-ingress",kind="CiliumNetworkPolicy"' in text
        server.cluster.delete(CNPS, "shop", "web-ingress")
        wait_for(lambda: "CiliumNetworkPolicy shop/web-ingress" not in enrichment.state.policies, what="deletion")
        assert "shop/web-ingress" in enrichment.state.policies  # the NetworkPolicy stays
    finally:
        enrichment.close()
