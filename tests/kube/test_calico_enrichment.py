"""Calico NetworkPolicies / GlobalNetworkPolicies and the AdminNetworkPolicy family through the
enrichment, against the fake API server (real list/watch protocol): networkpolicy_info with the
issue's kinds and the names Calico's flows use, zero-seeded series, kinds appearing later."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.kube.attach import KubeEnrichment, attach
from exporter.pipeline import Pipeline
from tests.kube.cluster import populate
from tests.kube.fake_apiserver import FakeAPIServer
from tests.kube.test_cilium_enrichment import FAST
from tests.kube.test_enrichment import NO_ENV, config_for, dropped, exposition, wait_for

CALICO_NPS, CALICO_GNPS = "networkpolicies.projectcalico.org", "globalnetworkpolicies.projectcalico.org"
ANPS, BANPS, CLUSTER_NPS = "adminnetworkpolicies", "baselineadminnetworkpolicies", "clusternetworkpolicies"
TIERED = (CALICO_NPS, CALICO_GNPS, ANPS, BANPS, CLUSTER_NPS)


def obj(name: str, spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "managedFields": [{"manager": "kubectl", "operation": "Update",
                                                             "time": "2026-11-28T13:00:00Z"}]}
    if namespace:
        meta["namespace"] = namespace
    return {"metadata": meta, "spec": spec}  # as list items come: no kind, no apiVersion


CALICO_NP = obj("security.db-in", {"tier": "security", "order": 10, "selector": "app == 'db'",
                                   "ingress": [{"action": "Allow", "source": {"selector": "app == 'api'"}}]}, "shop")
CALICO_GNP = obj("security.block", {"tier": "security", "selector": "all()", "types": ["Egress"],
                                    "egress": [{"action": "Deny", "destination": {"nets": ["192.0.2.0/24"]}},
                                               {"action": "Pass"}]})
DEFAULT_TIER_NP = obj("web", {"selector": "app == 'web'", "ingress": [{"action": "Allow"}]}, "shop")
ANP = obj("cluster-control", {"priority": 10, "subject": {"namespaces": {}},
                              "ingress": [{"name": "deny", "action": "Deny", "from": [{"namespaces": {}}]}]})
BANP = obj("default", {"subject": {"namespaces": {}},
                       "egress": [{"name": "deny", "action": "Deny", "to": [{"namespaces": {}}]}]})
CNP = obj("admin-pass", {"tier": "Admin", "priority": 5, "subject": {"namespaces": {}},
                         "ingress": [{"name": "p", "action": "Pass", "from": [{"namespaces": {}}]}]})


@pytest.fixture
def server() -> Iterator[FakeAPIServer]:
    srv = FakeAPIServer()
    populate(srv.cluster)
    srv.cluster.apply(CALICO_NPS, CALICO_NP)
    srv.cluster.apply(CALICO_NPS, DEFAULT_TIER_NP)
    srv.cluster.apply(CALICO_GNPS, CALICO_GNP)
    srv.cluster.apply(ANPS, ANP)
    srv.cluster.apply(BANPS, BANP)
    srv.cluster.apply(CLUSTER_NPS, CNP)
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


def info_kinds(text: str) -> dict[str, str]:
    """policy → kind of every networkpolicy_info series."""
    import re

    return {m.group(1): m.group(2) for m in re.finditer(r'^networkpolicy_info\{policy="([^"]*)",kind="([^"]*)"',
                                                        text, re.M)}


def test_calico_and_admin_policies_are_listed_as_flows_name_them(server: FakeAPIServer, tmp_path: Path) -> None:
    pipeline, enrichment = start(server, tmp_path)
    try:
        text = exposition(pipeline)
        kinds = info_kinds(text)
        assert {k: v for k, v in kinds.items() if v not in ("NetworkPolicy",)} == {
            "shop/security.db-in": "CalicoNetworkPolicy",
            "shop/web": "CalicoNetworkPolicy",
            "security.block": "GlobalNetworkPolicy",
            "adminnetworkpolicy.cluster-control": "AdminNetworkPolicy",
            "baselineadminnetworkpolicy.default": "BaselineAdminNetworkPolicy",
            "kube-admin.admin-pass": "ClusterNetworkPolicy",
        }
        assert ('networkpolicy_info{policy="shop/security.db-in",kind="CalicoNetworkPolicy",policy_namespace="shop",'
                'policy_name="security.db-in",') in text
        assert ('networkpolicy_last_change_timestamp_seconds{policy="security.block",kind="GlobalNetworkPolicy"} '
                '1795870800') in text
        for resource in TIERED:
            assert f'netpol_exporter_kubernetes_kind_served{{kind="{resource}"}} 1' in text
        assert f'netpol_exporter_kubernetes_objects{{kind="{CALICO_NPS}"}} 2' in text
        # zero-seeded per direction of the policy's types
        enrichment.seed()
        seeded = {(k[0], k[1]) for k, v in dropped(pipeline).items() if v == 0}
        assert {("shop/security.db-in", "ingress"), ("security.block", "egress"),
                ("adminnetworkpolicy.cluster-control", "ingress"), ("baselineadminnetworkpolicy.default", "egress"),
                ("kube-admin.admin-pass", "ingress")} <= seeded
        assert ("security.block", "ingress") not in seeded
    finally:
        enrichment.close()


def test_watch_events_add_change_and_delete(server: FakeAPIServer, tmp_path: Path) -> None:
    _, enrichment = start(server, tmp_path)
    try:
        server.cluster.apply(CALICO_GNPS, obj("security.late", {"tier": "security", "selector": "all()"}))
        wait_for(lambda: "GlobalNetworkPolicy security.late" in enrichment.state.policies, what="a watched GNP")
        server.cluster.delete(CALICO_NPS, "shop", "security.db-in")
        wait_for(lambda: "CalicoNetworkPolicy shop/security.db-in" not in enrichment.state.policies,
                 what="its deletion")
        # a policy moved to another tier is renamed, not duplicated
        moved = obj("web", {"tier": "platform", "selector": "app == 'web'", "ingress": [{"action": "Allow"}]}, "shop")
        server.cluster.apply(CALICO_NPS, moved)
        wait_for(lambda: "CalicoNetworkPolicy shop/platform.web" in enrichment.state.policies, what="the move")
        assert "CalicoNetworkPolicy shop/web" not in enrichment.state.policies
        assert "shop/web-ingress" in enrichment.state.policies  # the Kubernetes NetworkPolicies stay
    finally:
        enrichment.close()


def test_kinds_not_served_then_installed(server: FakeAPIServer, tmp_path: Path) -> None:
    server.cluster.unserved = set(TIERED)
    pipeline, enrichment = start(server, tmp_path)
    try:
        text = exposition(pipeline)
        assert f'netpol_exporter_kubernetes_kind_served{{kind="{ANPS}"}} 0' in text
        assert "adminnetworkpolicy.cluster-control" not in text
        assert enrichment.watchers[ANPS].stats.errors == 0
        server.cluster.unserved = set()
        wait_for(lambda: "AdminNetworkPolicy adminnetworkpolicy.cluster-control" in enrichment.state.policies,
                 what="the ANP")
    finally:
        enrichment.close()


def test_an_invalid_calico_policy_is_listed_and_isolates_nothing(server: FakeAPIServer, tmp_path: Path) -> None:
    server.cluster.apply(CALICO_GNPS, obj("broken", {"selector": "app = 'x'"}))
    pipeline, enrichment = start(server, tmp_path)
    try:
        info = enrichment.state.policies["GlobalNetworkPolicy broken"]
        assert info.directions == ()
        assert 'networkpolicy_info{policy="broken",kind="GlobalNetworkPolicy"' in exposition(pipeline)
    finally:
        enrichment.close()
