"""Kubernetes enrichment: cache memory at 10k pods / 1k policies, sync time, enrich() cost per record.

    .venv/bin/python bench/kube_memory.py [--pods 10000] [--policies 1000] [--records 200000]

Memory: the caches are filled from API-shaped JSON list pages through the same sinks the watches
use; reported as tracemalloc's retained bytes (after the JSON is dropped and a GC) and the RSS delta.
Sync: the four kinds listed through the real `kubernetes` client from the test suite's fake API
server (500-object pages), until every cache is synced. Enrich: Hubble records decoded once, then
the enricher timed alone per record (peer naming by owner references, IP lookup, default-deny
attribution from its cache), and the full ingest path with and without enrichment.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporter.config import Config  # noqa: E402
from exporter.decoders.hubble import decode_line  # noqa: E402
from exporter.kube.enrich import Enricher  # noqa: E402
from exporter.kube.kinds import NamespaceSink, NetworkPolicySink, PodSink, ReplicaSetSink  # noqa: E402
from exporter.kube.state import ClusterState  # noqa: E402
from exporter.model import FlowRecord  # noqa: E402
from exporter.pipeline import Pipeline  # noqa: E402

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _suffix(n: int, rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


def build_cluster(pods: int, policies: int, seed: int = 7) -> dict[str, list[dict[str, Any]]]:
    """API-shaped objects: ~10 pods per Deployment, 100 namespaces, policies spread over them."""
    rng = random.Random(seed)
    namespaces = [f"team-{i:03d}" for i in range(max(1, min(100, pods // 100)))]
    out: dict[str, list[dict[str, Any]]] = {"pods": [], "replicasets": [], "namespaces": [], "networkpolicies": []}
    for ns in namespaces:
        out["namespaces"].append({"metadata": {"name": ns, "uid": f"uid-{ns}", "resourceVersion": "1",
                                               "labels": {"kubernetes.io/metadata.name": ns, "team": ns[-3:]}},
                                  "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
    deployments = max(1, pods // 10)
    for d in range(deployments):
        ns = namespaces[d % len(namespaces)]
        app, rs_hash = f"svc-{d}", _suffix(10, rng)
        rs = f"{app}-{rs_hash}"
        out["replicasets"].append({"metadata": {
            "name": rs, "namespace": ns, "uid": f"uid-rs-{d}", "resourceVersion": "1",
            "labels": {"app": app, "pod-template-hash": rs_hash},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app, "uid": f"uid-d-{d}",
                                 "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"replicas": 10}, "status": {"replicas": 10}})
        for r in range(10):
            i = d * 10 + r
            if i >= pods:
                break
            out["pods"].append({
                "metadata": {
                    "name": f"{rs}-{_suffix(5, rng)}", "namespace": ns, "uid": f"uid-pod-{i}", "resourceVersion": "1",
                    "creationTimestamp": "2026-11-28T10:00:00Z",
                    "labels": {"app": app, "pod-template-hash": rs_hash, "app.kubernetes.io/part-of": "shop",
                               "version": "v1"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                         "uid": f"uid-rs-{d}", "controller": True, "blockOwnerDeletion": True}]},
                "spec": {"nodeName": f"node-{i % 200}", "serviceAccountName": "default", "containers": [{
                    "name": "app", "image": "registry.example/app:1.2.3", "ports": [{"containerPort": 8080}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}, "env": [{"name": "MODE",
                                                                                           "value": "prod"}]}]},
                "status": {"phase": "Running", "podIP": f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}",
                           "podIPs": [{"ip": f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}"}],
                           "hostIP": "192.168.0.1", "conditions": [{"type": "Ready", "status": "True"}]},
            })
    for p in range(policies):
        ns = namespaces[p % len(namespaces)]
        app = f"svc-{p % deployments}"
        out["networkpolicies"].append({"metadata": {
            "name": f"{app}-policy-{p}", "namespace": ns, "uid": f"uid-np-{p}", "resourceVersion": "1",
            "generation": 1, "creationTimestamp": "2026-11-28T10:00:00Z",
            "managedFields": [{"manager": "kubectl", "operation": "Update", "time": "2026-11-28T10:00:00Z"}]},
            "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": f"svc-{(p + 1) % deployments}"}},
                                           "namespaceSelector": {"matchLabels": {"team": ns[-3:]}}}],
                                  "ports": [{"port": 8080, "protocol": "TCP"}]}],
                     "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                                 "ports": [{"port": 53, "protocol": "UDP"}]}]}})
    return out


def pages(items: list[dict[str, Any]], size: int = 500) -> list[bytes]:
    return [json.dumps(items[i:i + size]).encode() for i in range(0, len(items), size)]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fill(state: ClusterState, cluster: dict[str, list[dict[str, Any]]]) -> None:
    NamespaceSink(state).replace(pages(cluster["namespaces"]))
    ReplicaSetSink(state).replace(pages(cluster["replicasets"]))
    PodSink(state).replace(pages(cluster["pods"]))
    NetworkPolicySink(state).replace(pages(cluster["networkpolicies"]))


def measure_memory(cluster: dict[str, list[dict[str, Any]]]) -> ClusterState:
    payload = sum(len(p) for kind in cluster.values() for p in pages(kind))
    gc.collect()
    rss0 = rss_kib()
    state = ClusterState()
    t = time.perf_counter()
    fill(state, cluster)  # JSON pages built and dropped inside
    took = time.perf_counter() - t
    gc.collect()
    rss = rss_kib() - rss0
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    traced = ClusterState()
    fill(traced, cluster)
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - base
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del traced
    gc.collect()
    print(f"caches: {len(state.pods_by_name)} pods, {len(state.rs_workload)} replicasets, "
          f"{len(state.namespaces)} namespaces, {len(state.policies)} policies "
          f"(API JSON {payload / 1e6:.1f} MB)")
    print(f"  retained (tracemalloc): {retained / 1e6:.1f} MB   peak while loading: {peak / 1e6:.1f} MB   "
          f"RSS delta (upper bound, freed arenas are not returned): {rss / 1e3:.1f} MB   load {took:.2f} s")
    return state


def measure_sync(cluster: dict[str, list[dict[str, Any]]]) -> None:
    from exporter.kube.attach import attach
    from tests.kube.fake_apiserver import FakeAPIServer

    server = FakeAPIServer()
    for kind, items in cluster.items():
        for obj in items:
            server.cluster.objects[kind][(obj["metadata"].get("namespace", ""), obj["metadata"]["name"])] = obj
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Config.model_validate({"kubernetes": {"kubeconfig": str(server.write_kubeconfig(
                Path(tmp) / "kubeconfig"))}})
            pipeline = Pipeline(config)
            enrichment = attach(pipeline, env={})
            assert enrichment is not None
            t = time.perf_counter()
            enrichment.start_threads()
            ok = enrichment.wait_synced(300)
            took = time.perf_counter() - t
            enrichment.close()
        print(f"sync through the kubernetes client from a local API server: {took:.2f} s (synced={ok})")
    finally:
        server.stop()


def hubble_records(cluster: dict[str, list[dict[str, Any]]], n: int) -> list[bytes]:
    rng = random.Random(3)
    pods = cluster["pods"]
    lines = []
    for i in range(n):
        src, dst = rng.choice(pods), rng.choice(pods)
        denied = i % 2 == 0
        flow = {
            "time": "2026-11-28T12:00:00Z", "verdict": "DROPPED" if denied else "FORWARDED",
            "event_type": {"type": 5}, "traffic_direction": "INGRESS",
            "IP": {"source": src["status"]["podIP"], "destination": dst["status"]["podIP"]},
            "l4": {"TCP": {"source_port": 40000 + i % 1000, "destination_port": 8080}},
            "source": {"namespace": src["metadata"]["namespace"], "pod_name": src["metadata"]["name"],
                       "labels": [f"k8s:app={src['metadata']['labels']['app']}"]},
            "destination": {"namespace": dst["metadata"]["namespace"], "pod_name": dst["metadata"]["name"],
                            "labels": [f"k8s:app={dst['metadata']['labels']['app']}"]},
        }
        if denied:
            flow["drop_reason_desc"] = "POLICY_DENIED"
        lines.append(json.dumps({"flow": flow}).encode())
    return lines


def measure_enrich(state: ClusterState, cluster: dict[str, list[dict[str, Any]]], n: int) -> None:
    lines = hubble_records(cluster, n)
    t = time.process_time()
    records = [r for r in map(decode_line, lines) if isinstance(r, FlowRecord)]
    decode_ns = (time.process_time() - t) / len(lines) * 1e9
    enricher = Enricher(state)
    for r in records[:1000]:  # warm the attribution cache as a running exporter would have
        enricher(r)
    records = [r for r in map(decode_line, lines) if isinstance(r, FlowRecord)]
    t = time.process_time()
    for r in records:
        enricher(r)
    per = (time.process_time() - t) / len(records) * 1e9
    print(f"enrich(): {per:.0f} ns CPU per record ({len(records)} Hubble records, half default-deny drops; "
          f"{enricher.attributed} attributed); decoding the same line: {decode_ns:.0f} ns "
          f"(enrich = {per / decode_ns:.0%} of decode)")

    cold = Enricher(state)
    sample = [r for r in map(decode_line, lines[:2000]) if isinstance(r, FlowRecord)]
    t = time.process_time()
    for r in sample:
        state.policy_generation += 1  # every record misses the attribution cache
        cold(r)
    print(f"enrich() on an attribution-cache miss: {(time.process_time() - t) / len(sample) * 1e6:.1f} µs CPU "
          "per record")

    for label, enrich in (("without enrichment", None), ("with enrichment", Enricher(state))):
        pipeline = Pipeline(Config())
        pipeline.counter.enrich = enrich
        stats = pipeline.source("hubble:bench", "hubble")
        t = time.process_time()
        pipeline.ingest(stats, lines)
        took = time.process_time() - t
        print(f"ingest {label}: {len(lines) / took / 1e3:.0f}k lines per CPU second")


def reference_ns() -> float:
    """This machine's speed: one dict lookup in a Python loop (about 40 ns on an idle desktop core)."""
    table = {("ns", str(i)): i for i in range(10_000)}
    keys = [("ns", str(i % 10_000)) for i in range(500_000)]
    t = time.process_time()
    for key in keys:
        table.get(key)
    return (time.process_time() - t) / len(keys) * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=10_000)
    parser.add_argument("--policies", type=int, default=1_000)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--no-sync", action="store_true", help="skip the sync through the fake API server")
    args = parser.parse_args()
    print(f"reference: {reference_ns():.0f} ns CPU per dict lookup in a Python loop")
    cluster = build_cluster(args.pods, args.policies)
    state = measure_memory(cluster)
    if not args.no_sync:
        measure_sync(cluster)
    measure_enrich(state, cluster, args.records)


if __name__ == "__main__":
    main()
