"""Realistic synthetic flow logs for the benchmarks.

Hubble: the mix of a real agent stream — per connection, trace events for every hop of the
handshake, data and replies (most lines), one policy-verdict event per enforcing side, and for
denied connections a DROPPED verdict followed by its drop event, retransmitted; a lost-events line
now and then. Endpoints carry the ~10 labels Cilium attaches, so lines are ~1 KB like real ones.
Calico: flows.log records at aggregation level 1-2 with enforced/all policies.
"""

from __future__ import annotations

import calendar
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import yaml

NAMESPACES = ["temporal", "temporal-workers", "temporal-monitoring", "databases", "ingress-nginx", "shop"]
APPS = ["frontend", "history", "matching", "worker", "payment-worker", "prometheus", "postgresql", "elasticsearch",
        "cart", "checkout", "catalog", "currency", "shipping", "ads", "recommendation"]
PORTS = [7233, 7234, 7235, 7239, 5432, 9200, 9090, 8080, 443, 53]
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _suffix(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def _endpoint(rng: random.Random, ns: str, app: str, pod: str, identity: int) -> dict:
    return {
        "ID": rng.randint(100, 4000),
        "identity": identity,
        "cluster_name": "prod-eu1",
        "namespace": ns,
        "labels": [
            f"k8s:app={app}",
            f"k8s:app.kubernetes.io/name={app}",
            f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={ns}",
            "k8s:io.cilium.k8s.policy.cluster=prod-eu1",
            f"k8s:io.cilium.k8s.policy.serviceaccount={app}",
            f"k8s:io.kubernetes.pod.namespace={ns}",
        ],
        "pod_name": pod,
        "workloads": [{"name": app, "kind": "Deployment"}],
    }


class HubbleGenerator:
    def __init__(self, seed: int = 1, pods: int = 200) -> None:
        self.rng = rng = random.Random(seed)
        self.pods = []
        for i in range(pods):
            ns, app = rng.choice(NAMESPACES), rng.choice(APPS)
            pod = f"{app}-{_suffix(rng, 10)}-{_suffix(rng, 5)}"
            ip = f"10.{(i >> 8) & 255}.{i & 255}.{rng.randint(2, 250)}"
            self.pods.append((ip, _endpoint(rng, ns, app, pod, 10000 + i), ns))
        # a service graph: each pod talks to a few destinations on one port each, as real workloads do
        self.edges = [(src, dst, rng.choice(PORTS)) for src in self.pods for dst in rng.sample(self.pods, 3)
                      if dst is not src]
        self.t_ns = 1_714_557_600_000_000_000

    def _time(self, step_us: int) -> str:
        self.t_ns += step_us * 1000
        s, ns = divmod(self.t_ns, 1_000_000_000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + f".{ns:09d}Z"

    def _line(self, flow: dict) -> dict:
        return {"flow": flow, "node_name": flow["node_name"], "time": flow["time"]}

    def _flow(self, src: tuple, dst: tuple, sport: int, dport: int, *, event: dict, verdict: str,
              direction: str, reply: bool = False, **extra: object) -> dict:
        (sip, sep, _), (dip, dep, _) = (dst, src) if reply else (src, dst)
        sp, dp = (dport, sport) if reply else (sport, dport)
        flow = {
            "time": self._time(self.rng.randint(5, 60)),
            "uuid": f"{self.rng.getrandbits(128):032x}",
            "verdict": verdict,
            "ethernet": {"source": "d2:d9:76:de:f4:90", "destination": "6e:3c:ce:d3:9e:a6"},
            "IP": {"source": sip, "destination": dip, "ipVersion": "IPv4"},
            "l4": {"TCP": {"source_port": sp, "destination_port": dp, "flags": {"SYN": True} if not reply else
                           {"SYN": True, "ACK": True}}},
            "source": sep, "destination": dep, "Type": "L3_L4", "node_name": "prod-eu1/worker-3",
            "event_type": event, "traffic_direction": direction, "is_reply": reply,
            "Summary": "TCP Flags: SYN",
        }
        flow.update(extra)
        return flow

    def connection(self) -> Iterator[dict]:
        """The line objects of one connection (an exporter-file line: flow, node_name, time)."""
        rng = self.rng
        src, dst, dport = rng.choice(self.edges)
        sport = rng.randint(32768, 60999)
        policy = {"name": f"{dst[1]['labels'][0][8:]}-policy", "namespace": dst[2],
                  "labels": ["k8s:io.cilium.k8s.policy.derived-from=NetworkPolicy"], "revision": "12"}
        if rng.random() < 0.08:  # denied at ingress: verdict + drop twin, retransmitted
            for _ in range(rng.randint(1, 3)):
                yield self._line(self._flow(src, dst, sport, dport, event={"type": 4, "sub_type": 3},
                                            verdict="FORWARDED", direction="EGRESS",
                                            trace_observation_point="TO_STACK"))
                yield self._line(self._flow(src, dst, sport, dport, event={"type": 5}, verdict="DROPPED",
                                            direction="INGRESS", drop_reason=133, drop_reason_desc="POLICY_DENIED",
                                            policy_match_type=0))
                yield self._line(self._flow(src, dst, sport, dport, event={"type": 1, "sub_type": 133},
                                            verdict="DROPPED", direction="INGRESS", drop_reason=133,
                                            drop_reason_desc="POLICY_DENIED"))
                self._time(1_000_000)
            return
        yield self._line(self._flow(src, dst, sport, dport, event={"type": 5}, verdict="FORWARDED",
                                    direction="EGRESS", policy_match_type=1, egress_allowed_by=[
                                        {"name": "allow-egress", "namespace": src[2], "revision": "3"}]))
        yield self._line(self._flow(src, dst, sport, dport, event={"type": 5}, verdict="FORWARDED",
                                    direction="INGRESS", policy_match_type=3, ingress_allowed_by=[policy]))
        for i in range(rng.randint(6, 14)):  # handshake, data, replies, teardown: trace events
            yield self._line(self._flow(src, dst, sport, dport, event={"type": 4, "sub_type": rng.randint(0, 11)},
                                        verdict="FORWARDED", direction="EGRESS" if i % 2 == 0 else "INGRESS",
                                        reply=i % 2 == 1, trace_observation_point="TO_ENDPOINT"))

    def objects(self, n: int, span_seconds: float = 0.0) -> list[dict]:
        """n line objects; with span_seconds, connections are spread evenly over that much time (a day's
        exporter file: nearly every line in its own second), else they follow each other within µs."""
        gap_us = span_seconds * 1e6 / n if span_seconds else 0.0
        out: list[dict] = []
        while len(out) < n:
            conn = list(self.connection())
            out.extend(conn)
            if gap_us:
                self._time(int(gap_us * len(conn)))
            if self.rng.random() < 0.002:
                out.append({"lost_events": {"source": "PERF_EVENT_RING_BUFFER", "num_events_lost": "17",
                                            "cpu": {"value": 1}}, "node_name": "prod-eu1/worker-3",
                            "time": self._time(0)})
        return out[:n]

    def lines(self, n: int, span_seconds: float = 0.0) -> list[bytes]:
        return encode(self.objects(n, span_seconds))

    def day_lines(self, n: int) -> list[bytes]:
        """The realistic day-spread mix: n lines over 24 hours."""
        return self.lines(n, span_seconds=DAY_SECONDS)

    def masked_lines(self, n: int) -> list[bytes]:
        """The day mix as an exporter with FIELD_MASK writes it (every event, only the fields the rules read)."""
        return encode([mask_fields(obj, FIELD_MASK) for obj in self.objects(n, DAY_SECONDS)])

    def aggregated_lines(self, n: int, interval_seconds: float = 30.0) -> list[bytes]:
        """n aggregated exporter lines: the dense mix grouped per interval as Cilium 1.18+'s exporter does."""
        out: list[dict] = []
        while len(out) < n:
            out.extend(aggregate(self.objects(20_000), interval_seconds))
        return encode(out[:n])


DAY_SECONDS = 86_400.0


def encode(objects: list[dict]) -> list[bytes]:
    return list(map(msgspec.json.encode, objects))  # compact, key order kept, as protojson writes


def _seconds(timestamp: str) -> float:
    return calendar.timegm(time.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + timestamp[19:-1])


# What the shipped Cilium exporter configuration writes (deploy/cilium): its fieldMask (protojson field
# names, nested with dots) and its allowList (FlowFilters, OR-ed; within one, fields AND-ed, values OR-ed).
_VALUES = yaml.safe_load((Path(__file__).resolve().parents[1] / "deploy/cilium/hubble-export-values.yaml").read_text())
FIELD_MASK: tuple[str, ...] = tuple(_VALUES["hubble"]["export"]["static"]["fieldMask"])
ALLOW_LIST: tuple[dict, ...] = tuple(json.loads(f) for f in _VALUES["hubble"]["export"]["static"]["allowList"])


def _project(obj: dict, paths: list[list[str]]) -> dict:
    out: dict = {}
    for key, value in obj.items():  # protojson order is kept
        subpaths = [path[1:] for path in paths if path[0] == key]
        if not subpaths:
            continue
        if any(not sub for sub in subpaths) or not isinstance(value, dict):
            out[key] = value
        else:
            out[key] = _project(value, subpaths)
    return out


def mask_fields(obj: dict, mask: tuple[str, ...] = FIELD_MASK) -> dict:
    """An exporter line with its flow projected on `mask` (fieldMask semantics); other lines unchanged."""
    if "flow" not in obj:
        return obj
    return {**obj, "flow": _project(obj["flow"], [path.split(".") for path in mask])}


def _matches(flow: dict, flt: dict) -> bool:
    if not flt.keys() <= {"event_type", "verdict"}:
        raise ValueError(f"the allowList emulation knows event_type and verdict only, not {sorted(flt)}")
    event = flow.get("event_type", {})
    types = flt.get("event_type")
    if types and not any(event.get("type", 0) == t["type"] and (not t.get("match_sub_type")
                                                                or event.get("sub_type", 0) == t["sub_type"])
                         for t in types):
        return False
    return not flt.get("verdict") or flow.get("verdict") in flt["verdict"]


def allowed(obj: dict, allow_list: tuple[dict, ...] = ALLOW_LIST) -> bool:
    """allowList semantics: a flow passes when one filter matches; non-flow lines (lost events) pass."""
    flow = obj.get("flow")
    return flow is None or any(_matches(flow, flt) for flt in allow_list)


def filtered_lines(objects: list[dict]) -> list[bytes]:
    """What the shipped exporter configuration writes for these events: allowList, then fieldMask."""
    return encode([mask_fields(obj) for obj in objects if allowed(obj)])


# What Cilium's exporter aggregation groups by here: every field the rules read but the time (the contract's
# condition for aggregated counts to equal the original stream's).
_AGGREGATION_KEY = [path.split(".") for path in FIELD_MASK if path != "time"]


def aggregate(objects: list[dict], interval_seconds: float) -> list[dict]:
    """Group flows per interval by their projection on _AGGREGATION_KEY; write each group's first flow with
    `aggregate {ingress_flow_count, egress_flow_count, unknown_direction_flow_count}` (zero counts omitted)."""
    out: list[dict] = []
    groups: dict[str, dict] = {}
    end = None
    for obj in objects:
        flow = obj.get("flow")
        if flow is None:
            continue
        t = _seconds(flow["time"])
        if end is None:
            end = t + interval_seconds
        if t >= end:
            out.extend(groups.values())
            groups.clear()
            end = t + interval_seconds
        key = json.dumps(_project(flow, _AGGREGATION_KEY), sort_keys=True)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {**obj, "flow": {**flow, "aggregate": {}}}
        counts = group["flow"]["aggregate"]
        field = {"INGRESS": "ingress_flow_count", "EGRESS": "egress_flow_count"}.get(
            flow.get("traffic_direction", ""), "unknown_direction_flow_count")
        counts[field] = counts.get(field, 0) + 1
    out.extend(groups.values())
    return out


def calico_lines(n: int, seed: int = 2, deployments: int = 300) -> list[bytes]:
    rng = random.Random(seed)
    # a cluster's workloads: (namespace, app, ReplicaSet hash) — aggregated names repeat across records
    pool = [(rng.choice(NAMESPACES), rng.choice(APPS), _suffix(rng, 10)) for _ in range(deployments)]
    # a service graph: each workload talks to a few others on one port each
    edges = [(src, dst, rng.choice(PORTS)) for src in pool for dst in rng.sample(pool, 3) if dst is not src]
    out = []
    for _ in range(n):
        deny = rng.random() < 0.1
        (sns, sapp, shash), (dns, dapp, dhash), port = rng.choice(edges)
        policy = (f"0|default|{dns}/knp.default.{dapp}-policy|deny|-1" if deny
                  else f"1|default|{dns}/knp.default.{dapp}-policy|allow|{rng.randint(0, 5)}")
        out.append(json.dumps({
            "start_time": 1700000000, "end_time": 1700000300, "source_ip": None, "source_name": "-",
            "source_name_aggr": f"{sapp}-{shash}-*", "source_namespace": sns, "source_port": None,
            "source_type": "wep", "source_labels": {"labels": [f"app={sapp}", "pod-template-hash=5d8f7c9b6d"]},
            "dest_ip": None, "dest_name": "-", "dest_name_aggr": f"{dapp}-{dhash}-*",
            "dest_namespace": dns, "dest_port": port, "dest_type": "wep",
            "dest_labels": {"labels": [f"app={dapp}"]}, "dest_service_namespace": "-", "dest_service_name": "-",
            "dest_service_port": "-", "dest_service_port_num": None, "proto": "tcp",
            "action": "deny" if deny else "allow", "reporter": "dst",
            "policies": {"all_policies": [policy], "enforced_policies": [policy], "pending_policies": [policy]},
            "bytes_in": rng.randint(100, 100000), "bytes_out": rng.randint(100, 100000),
            "num_flows": 3, "num_flows_started": 2, "num_flows_completed": 2,
            "packets_in": rng.randint(1, 500), "packets_out": 0 if deny else rng.randint(1, 500),
            "http_requests_allowed_in": 0, "http_requests_denied_in": 0, "process_name": "-",
            "num_process_names": 0, "process_id": "-", "num_process_ids": 0, "original_source_ips": None,
            "num_original_source_ips": 0,
        }).encode())
    return out
