#!/usr/bin/env python3
"""Write alerting-recording.hubble.jsonl: 15 recorded steps (10 s apart) of a Temporal cluster's Hubble
exporter file, the input of tests/e2e/test_alerting_e2e.py. Rerun after editing; the output is committed.

Every step: allowed connections the seed's policies exist for, each seen by its enforcing side(s) --
payment-worker -> temporal-frontend:7233, the metrics scrape temporal-monitoring/prometheus ->
temporal-history:9090, DNS to kube-system/coredns:53/UDP, ICMP echo inside temporal-dev, and
Prometheus scraping the exporter itself (10215) -- plus a trace event and a reply that never count.
Steps 6-9: five temporal-clients workloads each send one SYN per step to temporal-history:7235 and a
CiliumNetworkPolicy deny rule drops it (policy verdict + its drop-event twin 1 ms later, counted once):
20 packets over 5 flows, at most 4 per series -- the violation the seed's per-series rule misses.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

OUT = Path(__file__).with_name("alerting-recording.hubble.jsonl")
T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
NODE = "kind-temporal/worker-1"
STEPS = 15
VIOLATION_STEPS = range(6, 10)


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace("Z", "000Z")


def pod(ns: str, workload: str, pod_name: str, app: str, identity: int, endpoint_id: int) -> dict:
    return {"ID": endpoint_id, "identity": identity, "namespace": ns,
            "labels": [f"k8s:app={app}", f"k8s:io.kubernetes.pod.namespace={ns}"],
            "pod_name": pod_name, "workloads": [{"name": workload, "kind": "Deployment"}]}


def policy(ns: str, name: str, kind: str = "NetworkPolicy") -> dict:
    return {"name": name, "namespace": ns, "kind": kind, "revision": "7",
            "labels": [f"k8s:io.cilium.k8s.policy.derived-from={kind}", f"k8s:io.cilium.k8s.policy.name={name}",
                       f"k8s:io.cilium.k8s.policy.namespace={ns}"]}


PAYMENT = pod("temporal-workers", "payment-worker", "payment-worker-6c9f7d8b4-k2x7q", "payment-worker", 41021, 811)
FRONTEND = pod("temporal", "temporal-frontend", "temporal-frontend-7b5d9c6f8-pq4zt", "temporal-frontend", 30112, 402)
HISTORY = pod("temporal", "temporal-history", "temporal-history-0", "temporal-history", 30113, 405)
PROM_T = pod("temporal-monitoring", "prometheus", "prometheus-5f7c8d9b6-wx2lm", "prometheus", 52201, 903)
COREDNS = pod("kube-system", "coredns", "coredns-5d78c9869d-8kw2n", "kube-dns", 102, 12)
TOOLBOX = pod("temporal-dev", "toolbox", "toolbox-7d4b5c6f9-zr8vn", "toolbox", 60210, 1201)
SSHD = pod("temporal-dev", "sshd", "sshd-85f6b7c9d4-lm3qp", "sshd", 60211, 1202)
PROM_MON = pod("monitoring", "prometheus", "prometheus-k8s-0", "prometheus", 70001, 1501)
EXPORTER = pod("netpol-exporter", "netpol-exporter", "netpol-exporter-x7k2p", "netpol-exporter", 70100, 1602)
CLIENTS = [pod("temporal-clients", name, f"{name}-5c8d7f6b9-{suffix}", name, 80100 + i, 1700 + i)
           for i, (name, suffix) in enumerate([("sdk-client", "a1b2c"), ("batch-client", "d4f5g"),
                                               ("cron-client", "h6j7k"), ("report-client", "m8n9p"),
                                               ("admin-console", "q2r4s")])]
IPS = {id(e): f"10.244.{i // 200 + 1}.{i % 200 + 10}" for i, e in enumerate(
    [PAYMENT, FRONTEND, HISTORY, PROM_T, COREDNS, TOOLBOX, SSHD, PROM_MON, EXPORTER, *CLIENTS])}


def flow(t: datetime, src: dict, dst: dict, l4: dict, direction: str, verdict: str = "FORWARDED",
         event_type: int = 5, sub_type: int = 0, **extra: object) -> str:
    kind = {"type": event_type, **({"sub_type": sub_type} if sub_type else {})}
    body = {"time": ts(t), "uuid": f"e2e-{t.timestamp():.6f}-{direction}-{event_type}", "verdict": verdict,
            "IP": {"source": IPS[id(src)], "destination": IPS[id(dst)], "ipVersion": "IPv4"}, "l4": l4,
            "source": src, "destination": dst, "Type": "L3_L4", "node_name": NODE,
            "event_type": kind, "traffic_direction": direction, "is_reply": False, **extra}
    return json.dumps({"flow": body, "node_name": NODE, "time": ts(t)}, separators=(",", ":"))


def tcp(sport: int, dport: int) -> dict:
    return {"TCP": {"source_port": sport, "destination_port": dport, "flags": {"SYN": True}}}


def allowed(t: datetime, src: dict, dst: dict, l4: dict, ingress: dict | None, egress: dict | None) -> list[str]:
    lines = []
    if egress:
        lines.append(flow(t, src, dst, l4, "EGRESS", egress_allowed_by=[egress]))
    if ingress:
        lines.append(flow(t + timedelta(microseconds=300), src, dst, l4, "INGRESS", ingress_allowed_by=[ingress]))
    return lines


def step(k: int) -> list[str]:
    t = T0 + timedelta(seconds=10 * k)
    ms = timedelta(milliseconds=1)
    lines = [
        *allowed(t, PAYMENT, FRONTEND, tcp(40000 + k, 7233), policy("temporal", "temporal-frontend-policy"),
                 policy("temporal-workers", "payment-worker-policy")),
        *allowed(t + 10 * ms, PROM_T, HISTORY, tcp(41000 + k, 9090), policy("temporal", "temporal-history-policy"),
                 policy("temporal-monitoring", "prometheus-policy")),
        *allowed(t + 20 * ms, HISTORY, COREDNS, {"UDP": {"source_port": 42000 + k, "destination_port": 53}},
                 None, policy("temporal", "allow-dns-access")),
        *allowed(t + 30 * ms, TOOLBOX, SSHD, {"ICMPv4": {"type": 8}}, policy("temporal-dev", "dev-relaxed-policy"),
                 policy("temporal-dev", "dev-relaxed-policy")),
        *allowed(t + 40 * ms, PROM_MON, EXPORTER, tcp(43000 + k, 10215),
                 policy("netpol-exporter", "netpol-exporter"), None),
        # Never counted: a trace event and the reply of the scrape.
        flow(t + 50 * ms, FRONTEND, PAYMENT, tcp(7233, 40000 + k), "EGRESS", event_type=4,
             trace_observation_point="TO_STACK"),
        flow(t + 60 * ms, EXPORTER, PROM_MON, tcp(10215, 43000 + k), "EGRESS", is_reply=True),
    ]
    if k in VIOLATION_STEPS:
        deny = policy("temporal", "deny-clients-to-history", "CiliumNetworkPolicy")
        for i, client in enumerate(CLIENTS):
            at = t + timedelta(milliseconds=100 + 5 * i)
            l4 = tcp(50000 + 10 * i + k, 7235)
            lines.append(flow(at, client, HISTORY, l4, "INGRESS", verdict="DROPPED", drop_reason=181,
                              drop_reason_desc="POLICY_DENY", ingress_denied_by=[deny]))
            lines.append(flow(at + ms, client, HISTORY, l4, "INGRESS", verdict="DROPPED", event_type=1,
                              sub_type=181, drop_reason=181, drop_reason_desc="POLICY_DENY"))
    return lines


def main() -> None:
    lines = [json.dumps({"agent_event": {"type": "AGENT_STARTED"}, "node_name": NODE, "time": ts(T0)},
                        separators=(",", ":"))]
    for k in range(STEPS):
        lines += step(k)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} lines to {OUT}")


if __name__ == "__main__":
    main()
