"""Memory of the pairing state at its bound, beside 100k series (issue 15, item 6).

Builds, in one process: 100,000 live series (allowed verdicts of distinct flows), then a flood of
unpaired DROPPED verdicts (drop events switched off) that fills the pairing state to its bound
(exporter.counting.MAX_PENDING), and prints the resident set size after each step and the state's share.
Run: .venv/bin/python bench/pairing_memory.py
"""

from __future__ import annotations

import gc
import json
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.counting import MAX_PENDING
from exporter.model import Family
from exporter.pipeline import Pipeline

SERIES = 100_000
TARGET_MIB = 200


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def line(verdict: str, i: int, second: int, node: str = "worker-1", client: int | None = None) -> bytes:
    """A verdict of flow i (its own addresses and port); `client` fixes the source workload (one series)."""
    ns = f"ns{i % 50}"
    c = i if client is None else client
    flow = {
        "time": f"2026-11-30T08:{second // 60 % 60:02d}:{second % 60:02d}.{i % 1_000_000:06d}000Z",
        "verdict": verdict, "IP": {"source": f"10.0.0.{i // 60000 + 1}", "destination": "10.9.0.1"},
        "l4": {"TCP": {"source_port": 1024 + i % 60000, "destination_port": 8080}},
        "source": {"identity": 5000 + c, "namespace": ns if client is None else "attackers",
                   "pod_name": f"client{c}-7d9f8b6c5d-x2x4z",
                   "labels": [f"k8s:app=client{c}", f"k8s:io.kubernetes.pod.namespace={ns}"]},
        "destination": {"identity": 4000, "namespace": "shop", "pod_name": "cart-7f9c8b6d5c-q8w7z",
                        "labels": ["k8s:app=cart", "k8s:io.kubernetes.pod.namespace=shop"]},
        "node_name": node, "event_type": {"type": 5}, "traffic_direction": "INGRESS", "is_reply": False,
    }
    if verdict == "DROPPED":
        flow["drop_reason_desc"] = "POLICY_DENIED"
    return json.dumps({"flow": flow, "node_name": node}).encode()


def main() -> None:
    gc.collect()
    start = rss_mib()
    pipeline = Pipeline()
    stats = pipeline.source("hubble:bench", "hubble")
    store = pipeline.stores[Family.ALLOWED]  # the series of bench/run.py's 100k-series figure
    for i in range(SERIES):
        store.add((f"temporal/policy-{i % 300}", "ingress", f"ns-{i % 40}/client-{i}", f"ns-{i % 40}",
                   f"temporal/svc-{i % 97}", "temporal", str(1024 + i % 5000), "TCP"), 1, 0.0)
    gc.collect()
    with_series = rss_mib()
    # unpaired verdicts of distinct flows (source ports) from one workload, within one second (inside
    # the reorder horizon): the state fills to its bound, the series stay 100k (+1)
    for base in range(0, MAX_PENDING + 10_000, 10_000):
        pipeline.ingest(stats, [line("DROPPED", i, 1, client=0) for i in range(base, base + 10_000)])
    gc.collect()
    full = rss_mib()
    series = sum(len(store) for store in pipeline.stores.values())
    print(f"series: {series:,}   pending verdicts: {pipeline.counter.pending:,} (bound {MAX_PENDING:,})")
    print(f"RSS: start {start:.0f} MiB, with {SERIES:,} series {with_series:.0f} MiB, "
          f"plus a full pairing state {full:.0f} MiB")
    print(f"pairing state: {full - with_series:.0f} MiB; total {full:.0f} MiB "
          f"(target <= {TARGET_MIB} MiB: {'met' if full <= TARGET_MIB else 'NOT met'})")


if __name__ == "__main__":
    main()
