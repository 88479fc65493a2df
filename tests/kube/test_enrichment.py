"""The enrichment against the fake API server, through the real `kubernetes` client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.config import Config
from exporter.kube.attach import KubeEnrichment, attach, attach_for_once
from exporter.kube.watch import WatchTiming
from exporter.model import Family
from exporter.pipeline import Pipeline
from tests.kube.cluster import OPEN_DENY, WEB_POD, netpol, owner, pod, populate
from tests.kube.fake_apiserver import FakeAPIServer

FIXTURES = Path(__file__).parent / "fixtures"
FAST = WatchTiming(page_size=2, watch_timeout_s=5, connect_timeout_s=2, read_timeout_s=5,
                   backoff_initial_s=0.05, backoff_max_s=0.4)
NO_ENV: dict[str, str] = {}


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def server() -> Iterator[FakeAPIServer]:
    srv = FakeAPIServer()
    populate(srv.cluster)
    srv.start()
    yield srv
    srv.stop()


def config_for(server: FakeAPIServer, tmp_path: Path, **extra: Any) -> Config:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    return Config.model_validate({"kubernetes": {"kubeconfig": str(kubeconfig)}, **extra})


@pytest.fixture
def enriched(server: FakeAPIServer, tmp_path: Path) -> Iterator[tuple[Pipeline, KubeEnrichment]]:
    pipeline = Pipeline(config_for(server, tmp_path))
    enrichment = attach(pipeline, env=NO_ENV, timing=FAST)
    assert enrichment is not None
    enrichment.start_threads()
    assert enrichment.wait_synced(10), enrichment.describe()
    yield pipeline, enrichment
    enrichment.close()


def count(pipeline: Pipeline, lines: list[bytes]) -> None:
    pipeline.ingest(pipeline.source("hubble:test", "hubble"), lines)


def fixture_lines(name: str) -> list[bytes]:
    return (FIXTURES / name).read_bytes().splitlines()


def dropped(pipeline: Pipeline) -> dict[tuple[str, ...], float]:
    store = pipeline.stores[Family.DROPPED]
    return {key: entry[0] for key, entry in store.series.items()}


def exposition(pipeline: Pipeline) -> str:
    return pipeline.render().decode()


# -- the done-when cases -------------------------------------------------------------------------

def test_default_deny_drops_are_named_after_the_isolating_policy(enriched: tuple[Pipeline, KubeEnrichment]) -> None:
    pipeline, enrichment = enriched
    count(pipeline, fixture_lines("default_deny.jsonl"))
    series = dropped(pipeline)
    # ingress at the web pod: default-deny-all and web-ingress isolate it; web-ingress is the more specific
    assert series[("shop/web-ingress", "ingress", "monitoring/prometheus", "monitoring", "shop/storefront", "shop",
                   "8080", "TCP", "POLICY_DENIED")] == 1
    # egress from a CronJob's pod: only default-deny-all isolates egress
    assert series[("shop/default-deny-all", "egress", "shop/nightly-backup", "shop", "world", "", "443", "TCP",
                   "POLICY_DENIED")] == 1
    # a namespace without policies: nothing isolates the pod, default-deny stays
    assert series[("default-deny", "ingress", "monitoring/prometheus", "monitoring", "open/shell", "open", "22",
                   "TCP", "POLICY_DENIED")] == 1
    # a drop event whose destination endpoint was masked: the pod found by its IP, then attributed
    assert series[("shop/web-ingress", "ingress", "monitoring/prometheus", "monitoring", "shop/storefront", "shop",
                   "9090", "TCP", "POLICY_DENIED")] == 1
    assert enrichment.enricher.attributed == 3


def test_shared_docs_drop_is_attributed_to_the_policy_isolating_the_destination(
        enriched: tuple[Pipeline, KubeEnrichment], shared_samples: Path) -> None:
    """Cilium's export docs line: xwing → deathstar POLICY_DENIED, direction masked, no labels in the flow."""
    pipeline, _ = enriched
    lines = (shared_samples / "hubble" / "cilium-docs_export-rst_dropped.jsonl").read_bytes().splitlines()
    count(pipeline, lines)
    series = dropped(pipeline)
    assert series[("default/deathstar-ingress", "unknown", "default/xwing", "default", "default/deathstar", "default",
                   "80", "TCP", "POLICY_DENIED")] == 1
    assert not any(key[0] == "default-deny" for key in series)


def test_workloads_come_from_owner_references(enriched: tuple[Pipeline, KubeEnrichment]) -> None:
    pipeline, enrichment = enriched
    allowed = (b'{"flow":{"verdict":"FORWARDED","event_type":{"type":5},"traffic_direction":"INGRESS",'
               b'"IP":{"source":"10.0.0.7","destination":"10.0.0.5"},"l4":{"TCP":{"destination_port":8080}},'
               b'"source":{"namespace":"shop","pod_name":"nightly-backup-29400000-q7x2z"},'
               b'"destination":{"namespace":"shop","pod_name":"web-7d4b9c8f5b-x2x9z"},'
               b'"ingress_allowed_by":[{"name":"web-ingress","namespace":"shop"}]}}')
    count(pipeline, [allowed])
    keys = list(pipeline.stores[Family.ALLOWED].series)
    # heuristics alone would say shop/nightly-backup-29400000 and shop/web
    assert keys == [("shop/web-ingress", "ingress", "shop/nightly-backup", "shop", "shop/storefront", "shop", "8080",
                     "TCP")]
    state = enrichment.state
    assert state.workload_of(state.pods_by_name[("monitoring", "prometheus-0")]) == "prometheus"
    assert state.workload_of(state.pods_by_name[("monitoring", "node-exporter-x7k2p")]) == "node-exporter"
    assert state.workload_of(state.pods_by_name[("default", "xwing")]) is None  # bare pod: heuristics stand
    # a hostNetwork pod's address is the node's: never mapped to that pod
    assert "192.168.0.10" not in state.pods_by_ip


def test_networkpolicy_info_and_zero_seeded_series(enriched: tuple[Pipeline, KubeEnrichment]) -> None:
    pipeline, enrichment = enriched
    text = exposition(pipeline)
    for ns, name in (("shop", "default-deny-all"), ("shop", "web-ingress"), ("default", "deathstar-ingress")):
        assert (f'networkpolicy_info{{policy="{ns}/{name}",kind="NetworkPolicy",policy_namespace="{ns}",'
                f'policy_name="{name}",resource_version="') in text
    assert 'networkpolicy_info{policy="shop/web-ingress"' in text and 'generation="1"} 1' in text
    # managedFields time 2026-11-28T12:00:00Z
    assert ('networkpolicy_last_change_timestamp_seconds{policy="shop/web-ingress",kind="NetworkPolicy"} 1795867200'
            in text)
    assert 'netpol_exporter_kubernetes_cache_synced{kind="pods"} 1' in text
    assert 'netpol_exporter_kubernetes_objects{kind="networkpolicies"} 3' in text
    assert 'netpol_exporter_kubernetes_objects{kind="pods"} 7' in text

    assert enrichment.seed() == 4  # default-deny-all: ingress+egress; web-ingress, deathstar-ingress: ingress
    seeded = dropped(pipeline)
    empty = ("",) * 6
    for policy, direction in (("shop/default-deny-all", "ingress"), ("shop/default-deny-all", "egress"),
                              ("shop/web-ingress", "ingress"), ("default/deathstar-ingress", "ingress")):
        assert seeded[(policy, direction, *empty, "POLICY_DENIED")] == 0
    assert ('networkpolicy_dropped_packets_total{policy="shop/web-ingress",direction="ingress",source="",'
            'source_namespace="",destination="",destination_namespace="",destination_port="",protocol="",'
            'reason="POLICY_DENIED"} 0') in exposition(pipeline)
    # a drop on the seeded label set (labels switched off for cardinality) then counts from 0
    count(pipeline, fixture_lines("default_deny.jsonl")[:1])
    assert dropped(pipeline)[("shop/web-ingress", "ingress", *empty, "POLICY_DENIED")] == 0


def test_seeding_follows_disabled_labels(server: FakeAPIServer, tmp_path: Path) -> None:
    """With the per-flow labels switched off, the first drop lands on the seeded series: increase() sees 0 → 1."""
    disabled = ["source", "source_namespace", "destination", "destination_namespace", "destination_port", "protocol"]
    pipeline = Pipeline(config_for(server, tmp_path, labels={"disabled": disabled}))
    enrichment = attach(pipeline, env=NO_ENV, timing=FAST)
    assert enrichment is not None
    enrichment.start_threads()
    try:
        assert enrichment.wait_synced(10)
        enrichment.seed()
        assert dropped(pipeline)[("shop/web-ingress", "ingress", "POLICY_DENIED")] == 0
        count(pipeline, fixture_lines("default_deny.jsonl")[:1])
        assert dropped(pipeline)[("shop/web-ingress", "ingress", "POLICY_DENIED")] == 1
    finally:
        enrichment.close()


# -- changes and faults ----------------------------------------------------------------------------

def test_pods_coming_and_going(server: FakeAPIServer, enriched: tuple[Pipeline, KubeEnrichment]) -> None:
    pipeline, enrichment = enriched
    state = enrichment.state
    masked = (b'{"flow":{"verdict":"FORWARDED","event_type":{"type":5},"traffic_direction":"EGRESS",'
              b'"IP":{"source":"10.0.3.3","destination":"10.0.1.9"},"l4":{"TCP":{"destination_port":9090}},'
              b'"source":{},"destination":{"namespace":"monitoring","pod_name":"prometheus-0"}}}')
    count(pipeline, [masked])  # nobody has 10.0.3.3 yet
    server.cluster.apply("replicasets", {"metadata": {"name": "api-5f6d7c8b9d", "namespace": "shop",
                                                      "ownerReferences": owner("Deployment", "api-gateway")}})
    server.cluster.apply("pods", pod("shop", "api-5f6d7c8b9d-abcde", {"app": "api"}, "10.0.3.3",
                                     owner("ReplicaSet", "api-5f6d7c8b9d")))
    wait_for(lambda: "10.0.3.3" in state.pods_by_ip and ("shop", "api-5f6d7c8b9d") in state.rs_workload,
             what="the new pod and its ReplicaSet")
    count(pipeline, [masked])
    server.cluster.delete("pods", "shop", "api-5f6d7c8b9d-abcde")
    wait_for(lambda: "10.0.3.3" not in state.pods_by_ip, what="the pod's deletion")
    count(pipeline, [masked])
    # the address is reused by a pod of another workload
    server.cluster.apply("pods", pod("monitoring", "grafana-0", {"app": "grafana"}, "10.0.3.3",
                                     owner("StatefulSet", "grafana")))
    wait_for(lambda: "10.0.3.3" in state.pods_by_ip, what="the address's new pod")
    count(pipeline, [masked])
    sources = {key[2]: entry[0] for key, entry in pipeline.stores[Family.ALLOWED].series.items()}
    assert sources == {"unknown": 2, "shop/api-gateway": 1, "monitoring/grafana": 1}


def test_policy_added_mid_stream(server: FakeAPIServer, enriched: tuple[Pipeline, KubeEnrichment]) -> None:
    pipeline, enrichment = enriched
    open_drop = fixture_lines("default_deny.jsonl")[2]
    count(pipeline, [open_drop])
    server.cluster.apply("networkpolicies", OPEN_DENY)
    wait_for(lambda: "open/deny-ingress" in enrichment.state.policies, what="the new policy")
    count(pipeline, [open_drop])
    by_policy = {key[0]: value for key, value in dropped(pipeline).items()}
    assert by_policy == {"default-deny": 1, "open/deny-ingress": 1}
    assert 'networkpolicy_info{policy="open/deny-ingress"' in exposition(pipeline)
    enrichment.seed()
    assert ("open/deny-ingress", "ingress", "", "", "", "", "", "", "POLICY_DENIED") in dropped(pipeline)
    # modified (generation 2), then deleted
    changed = netpol("open", "deny-ingress",
                     {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"]},
                     managed_time="2026-11-28T13:00:00Z")
    server.cluster.apply("networkpolicies", changed)
    wait_for(lambda: enrichment.state.policies["open/deny-ingress"].generation == 2, what="the modification")
    assert enrichment.state.policies["open/deny-ingress"].changed_at == 1795870800.0
    count(pipeline, [open_drop])  # the shell pod is no longer selected
    assert {key[0]: value for key, value in dropped(pipeline).items()}["default-deny"] == 2
    server.cluster.delete("networkpolicies", "open", "deny-ingress")
    wait_for(lambda: "open/deny-ingress" not in enrichment.state.policies, what="the deletion")
    assert 'policy="open/deny-ingress"' not in exposition(pipeline).split("# HELP networkpolicy_info")[1]


def test_server_dying_and_returning(server: FakeAPIServer, enriched: tuple[Pipeline, KubeEnrichment]) -> None:
    pipeline, enrichment = enriched
    server.stop()
    wait_for(lambda: not enrichment.describe()["connected"], what="the outage to show")
    wait_for(lambda: all(w.stats.errors for w in enrichment.watchers.values()), what="errors counted")
    text = exposition(pipeline)
    assert 'netpol_exporter_kubernetes_watch_up{kind="pods"} 0' in text
    assert 'netpol_exporter_kubernetes_cache_synced{kind="pods"} 1' in text  # the last known state stays in use
    count(pipeline, fixture_lines("default_deny.jsonl")[:1])
    assert dropped(pipeline)[("shop/web-ingress", "ingress", "monitoring/prometheus", "monitoring",
                              "shop/storefront", "shop", "8080", "TCP", "POLICY_DENIED")] == 1
    # changes while the API server is away arrive through the resumed watch (history kept)
    server.cluster.apply("networkpolicies", OPEN_DENY)
    server.cluster.delete("pods", WEB_POD["metadata"]["namespace"], WEB_POD["metadata"]["name"])
    server.start()
    wait_for(lambda: enrichment.describe()["connected"], timeout=15, what="reconnection")
    wait_for(lambda: "open/deny-ingress" in enrichment.state.policies
             and ("shop", "web-7d4b9c8f5b-x2x9z") not in enrichment.state.pods_by_name, what="missed events")
    assert all(w.stats.relists == 0 for w in enrichment.watchers.values())  # resumed, not re-listed
    assert 'netpol_exporter_kubernetes_watch_up{kind="pods"} 1' in exposition(pipeline)


def test_watch_expiring_relists(server: FakeAPIServer, enriched: tuple[Pipeline, KubeEnrichment]) -> None:
    _pipeline, enrichment = enriched
    state = enrichment.state
    # changes lost to compaction: no watch event ever carries them, only a new list does
    server.cluster.apply("networkpolicies", OPEN_DENY, silent=True)
    server.cluster.delete("pods", "default", "xwing", silent=True)
    server.cluster.expire()
    wait_for(lambda: all(w.stats.relists >= 1 for w in enrichment.watchers.values()), what="410 → relist")
    wait_for(lambda: "open/deny-ingress" in state.policies and ("default", "xwing") not in state.pods_by_name,
             what="the relisted state")
    assert enrichment.synced
    # and watching goes on from the new list
    server.cluster.apply("pods", pod("default", "tiefighter", {"org": "empire"}, "10.244.1.61"))
    wait_for(lambda: ("default", "tiefighter") in state.pods_by_name, what="an event after the relist")


def test_too_old_watch_resource_version_relists(server: FakeAPIServer,
                                                enriched: tuple[Pipeline, KubeEnrichment]) -> None:
    """The server dies, history is compacted meanwhile: re-watching from the old RV gets 410 → list."""
    _pipeline, enrichment = enriched
    server.stop()
    wait_for(lambda: not enrichment.describe()["connected"], what="the outage")
    server.cluster.delete("pods", "default", "xwing")
    server.cluster.expire()
    server.start()
    wait_for(lambda: ("default", "xwing") not in enrichment.state.pods_by_name, timeout=15, what="relisted state")
    assert enrichment.watchers["pods"].stats.relists >= 1
    assert any("watch=true" in r and "resourceVersion=" in r for r in server.requests)


def test_watches_closed_at_once_do_not_spin(server: FakeAPIServer, enriched: tuple[Pipeline, KubeEnrichment]) -> None:
    server.max_watch_s = 0  # a proxy ending every watch stream right away
    server.cluster.expire()  # end the open watches (→ relist, then the short watches)
    time.sleep(1.5)
    watches = [r for r in server.requests if r.startswith("GET /api/v1/pods?") and "watch=true" in r]
    assert len(watches) < 12, len(watches)  # backing off, not hundreds of requests
    server.max_watch_s = None
    server.cluster.apply("pods", pod("default", "tiefighter", {"org": "empire"}, "10.244.1.61"))
    wait_for(lambda: ("default", "tiefighter") in enriched[1].state.pods_by_name, what="watching again")


def test_expired_continue_token_restarts_the_list(server: FakeAPIServer, tmp_path: Path) -> None:
    """HTTP 410 on a list page: the list starts over without the continue token."""
    pipeline = Pipeline(config_for(server, tmp_path))
    enrichment = attach(pipeline, env=NO_ENV, timing=FAST)
    assert enrichment is not None
    original = enrichment.watchers["pods"].list_call
    expired = []

    def list_pods(**kwargs: Any) -> Any:
        if kwargs.get("_continue") and not expired:
            # writes, then a compaction: the snapshot behind the token is gone
            server.cluster.apply("pods", pod("default", "tiefighter", {"org": "empire"}, "10.244.1.61"))
            server.cluster.expire()
            expired.append(True)
        return original(**kwargs)

    enrichment.watchers["pods"].list_call = list_pods
    enrichment.start_threads()
    try:
        assert enrichment.wait_synced(10)
        assert expired and enrichment.watchers["pods"].stats.relists == 1
        assert len(enrichment.state.pods_by_name) == 8
        pages = [r for r in server.requests if r.startswith("GET /api/v1/pods?") and "watch" not in r]
        assert any("continue=" in r for r in pages)
    finally:
        enrichment.close()


async def test_run_lifecycle_seeds_on_the_event_loop(server: FakeAPIServer, tmp_path: Path) -> None:
    pipeline = Pipeline(config_for(server, tmp_path))
    enrichment = attach(pipeline, env=NO_ENV, timing=FAST)
    assert enrichment is not None
    await enrichment.start()
    try:
        for _ in range(500):
            if enrichment.synced and ("shop/web-ingress", "ingress", "", "", "", "", "", "", "POLICY_DENIED") \
                    in pipeline.stores[Family.DROPPED].series:
                break
            await asyncio.sleep(0.02)
        assert enrichment.synced
        info = enrichment.describe()
        assert info["synced"] and info["kinds"]["networkpolicies"]["objects"] == 3
        server.cluster.apply("networkpolicies", OPEN_DENY)  # seeded when the change arrives
        for _ in range(500):
            if ("open/deny-ingress", "ingress", "", "", "", "", "", "", "POLICY_DENIED") \
                    in pipeline.stores[Family.DROPPED].series:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the new policy was not seeded")
    finally:
        await enrichment.stop()
    assert not any(w._thread.is_alive() for w in enrichment.watchers.values())


# -- configuration and `once` ----------------------------------------------------------------------

def test_switched_off_or_unconfigured(tmp_path: Path) -> None:
    assert attach(Pipeline(Config()), env=NO_ENV) is None  # auto, no kubeconfig, not in a pod
    off = Config.model_validate({"kubernetes": {"enabled": False, "kubeconfig": "/nonexistent"}})
    assert attach(Pipeline(off), env={"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) is None
    missing = Config.model_validate({"kubernetes": {"kubeconfig": str(tmp_path / "missing")}})
    assert attach(Pipeline(missing), env=NO_ENV) is None
    with pytest.raises(SystemExit, match="missing"):
        attach_for_once(Pipeline(missing), env=NO_ENV)


def test_wrong_credentials_are_reported(server: FakeAPIServer, tmp_path: Path) -> None:
    pipeline = Pipeline(config_for(server, tmp_path))
    server.token = "rotated"
    with pytest.raises(SystemExit, match=r"pods: HTTP 401 Unauthorized"):
        attach_for_once(pipeline, sync_timeout_s=0.5, env=NO_ENV, timing=FAST)


def test_once_fails_clearly_when_the_server_does_not_answer(tmp_path: Path) -> None:
    dead = FakeAPIServer()
    dead.start()
    dead.stop()  # a port nobody listens on any more
    pipeline = Pipeline(config_for(dead, tmp_path))
    with pytest.raises(SystemExit, match=r"caches not synced within 1s .*pods: .*--no-kubernetes"):
        attach_for_once(pipeline, sync_timeout_s=1, env=NO_ENV, timing=FAST)


def test_once_command_counts_against_the_cluster(server: FakeAPIServer, tmp_path: Path) -> None:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "once", "--format", "hubble", "--kubeconfig", str(kubeconfig),
         str(FIXTURES / "default_deny.jsonl")],
        capture_output=True, text=True, timeout=60, env=env, cwd=Path(__file__).resolve().parents[2], check=False)
    assert out.returncode == 0, out.stderr
    assert ('networkpolicy_dropped_packets_total{policy="shop/web-ingress",direction="ingress",'
            'source="monitoring/prometheus",source_namespace="monitoring",destination="shop/storefront",'
            'destination_namespace="shop",destination_port="8080",protocol="TCP",reason="POLICY_DENIED"} 1'
            ) in out.stdout
    assert 'networkpolicy_info{policy="shop/default-deny-all"' in out.stdout
    assert 'policy="shop/default-deny-all",direction="egress",source="",' in out.stdout  # seeded
    plain = subprocess.run(
        [sys.executable, "-m", "exporter", "once", "--format", "hubble", "--no-kubernetes",
         str(FIXTURES / "default_deny.jsonl")],
        capture_output=True, text=True, timeout=60, env=env, cwd=Path(__file__).resolve().parents[2], check=False)
    assert plain.returncode == 0, plain.stderr
    assert 'policy="default-deny",direction="ingress",source="monitoring/prometheus"' in plain.stdout
    assert "networkpolicy_info" not in plain.stdout


def test_calico_records_get_owner_reference_names(enriched: tuple[Pipeline, KubeEnrichment]) -> None:
    pipeline, _ = enriched
    line = json.dumps({
        "start_time": 1795867200, "end_time": 1795867500, "source_ip": "10.0.1.9", "source_name": "prometheus-0",
        "source_name_aggr": "prometheus-*", "source_namespace": "monitoring", "source_port": None,
        "source_type": "wep", "source_labels": {"labels": ["app=prometheus"]}, "dest_ip": "10.0.0.5",
        "dest_name": "web-7d4b9c8f5b-x2x9z", "dest_name_aggr": "web-7d4b9c8f5b-*", "dest_namespace": "shop",
        "dest_port": 8080, "dest_type": "wep", "dest_labels": {"labels": ["app=web"]}, "proto": "tcp",
        "action": "deny", "reporter": "dst",
        "policies": {"all_policies": ["0|default|shop/knp.default.web-ingress|deny|-1"]},
        "packets_in": 3, "packets_out": 0,
    }).encode()
    pipeline.ingest(pipeline.source("calico:test", "calico"), [line])
    assert dropped(pipeline) == {("shop/web-ingress", "ingress", "monitoring/prometheus", "monitoring",
                                  "shop/storefront", "shop", "8080", "TCP", "POLICY_DENIED"): 3}
