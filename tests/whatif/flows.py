"""A small recorded cluster: Hubble lines as the agent's exporter file writes them (two nodes), and
Calico flows.log / Goldmane records of the same shape as the project guide's recorded samples.

Namespace `shop` holds web (app=web), api (app=api) and db (app=db); `kube-system` holds coredns
(k8s-app=kube-dns); 203.0.113.9 is a client on the internet.
"""

from __future__ import annotations

import json
import time as _time
from dataclasses import dataclass
from typing import Any

T0 = 1_796_400_000  # 2026-12-04T16:00:00Z, seconds


def stamp(seconds: float) -> str:
    whole = int(seconds)
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(T0 + whole)) + f".{round((seconds - whole) * 1e9):09d}Z"


@dataclass(frozen=True)
class Pod:
    namespace: str
    workload: str
    pod: str
    ip: str
    labels: tuple[str, ...]
    node: str

    def endpoint(self) -> dict[str, Any]:
        return {
            "ID": 100 + sum(map(ord, self.pod)) % 3000,
            "identity": 20000 + sum(map(ord, self.workload)),
            "namespace": self.namespace,
            "labels": [*(f"k8s:{label}" for label in self.labels),
                       f"k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name={self.namespace}",
                       f"k8s:io.cilium.k8s.policy.serviceaccount={self.workload}",
                       f"k8s:io.kubernetes.pod.namespace={self.namespace}"],
            "pod_name": self.pod,
            "workloads": [{"name": self.workload, "kind": "Deployment"}],
        }


@dataclass(frozen=True)
class World:
    ip: str

    def endpoint(self) -> dict[str, Any]:
        return {"identity": 2, "labels": ["reserved:world"]}


WEB = Pod("shop", "web", "web-5d8f7c9b6d-k2x7p", "10.0.1.11", ("app=web", "pod-template-hash=5d8f7c9b6d"), "node-a")
API = Pod("shop", "api", "api-7c9d6f8b5c-m4qzt", "10.0.2.22", ("app=api", "tier=backend"), "node-b")
DB = Pod("shop", "db", "db-0", "10.0.2.33", ("app=db", "statefulset.kubernetes.io/pod-name=db-0"), "node-b")
COREDNS = Pod("kube-system", "coredns", "coredns-5d78c9869d-k7mpl", "10.0.0.10", ("k8s-app=kube-dns",), "node-a")
CLIENT = World("203.0.113.9")
REMOTE = {"identity": 31337}  # a pod of another cluster known by identity only: no labels


def hubble(src: Pod | World, dst: Pod | World, at: float, *, sport: int, dport: int, proto: str = "TCP",
           event: str = "trace-from", reply: bool | None = False, node: str | None = None,
           src_endpoint: dict[str, Any] | None = None, with_time: bool = True) -> bytes:
    """One exporter-file line. `event`: trace-from | trace-to | allow-egress | allow-ingress |
    deny-egress | deny-ingress | drop-egress | drop-ingress. A reply swaps nothing: pass the reply's
    own source and destination."""
    kinds: dict[str, tuple[dict[str, int], str, str]] = {
        "trace-from": ({"type": 4, "sub_type": 5}, "FORWARDED", "EGRESS"),
        "trace-to": ({"type": 4}, "FORWARDED", "INGRESS"),
        "allow-egress": ({"type": 5}, "FORWARDED", "EGRESS"),
        "allow-ingress": ({"type": 5}, "FORWARDED", "INGRESS"),
        "deny-egress": ({"type": 5}, "DROPPED", "EGRESS"),
        "deny-ingress": ({"type": 5}, "DROPPED", "INGRESS"),
        "drop-egress": ({"type": 1, "sub_type": 133}, "DROPPED", "EGRESS"),
        "drop-ingress": ({"type": 1, "sub_type": 133}, "DROPPED", "INGRESS"),
    }
    event_type, verdict, direction = kinds[event]
    if proto in ("ICMPv4", "ICMPv6"):
        l4: dict[str, Any] = {proto: {"type": dport}}
    else:
        l4 = {proto: {"source_port": sport, "destination_port": dport}}
    if node is None:
        end = src if direction == "EGRESS" else dst
        node = end.node if isinstance(end, Pod) else "node-a"
    flow: dict[str, Any] = {
        "verdict": verdict,
        "IP": {"source": src.ip, "destination": dst.ip, "ipVersion": "IPv4"},
        "l4": l4,
        "source": src_endpoint if src_endpoint is not None else src.endpoint(),
        "destination": dst.endpoint(),
        "Type": "L3_L4",
        "node_name": node,
        "event_type": event_type,
        "traffic_direction": direction,
    }
    if with_time:
        flow["time"] = stamp(at)
    if reply is not None:
        flow["is_reply"] = reply
    if verdict == "DROPPED":
        flow.update(drop_reason=133, drop_reason_desc="POLICY_DENIED")
    line: dict[str, Any] = {"flow": flow, "node_name": node}
    if with_time:
        line["time"] = flow["time"]
    return json.dumps(line, separators=(",", ":")).encode()


def calico(src: Pod | World, dst: Pod | World, *, reporter: str, action: str, started: int, port: int,
           start: int = 0, proto: str = "tcp", labels: bool = True) -> bytes:
    """A flows.log record (aggregation level 2: names and IPs of pods nulled)."""
    def side(peer: Pod | World, prefix: str) -> dict[str, Any]:
        if isinstance(peer, World):
            return {f"{prefix}_ip": peer.ip, f"{prefix}_name": "-", f"{prefix}_name_aggr": "pub",
                    f"{prefix}_namespace": "-", f"{prefix}_type": "net", f"{prefix}_labels": None}
        aggr = peer.pod.rsplit("-", 1)[0] + "-*" if "-" in peer.pod else peer.pod
        return {f"{prefix}_ip": None, f"{prefix}_name": "-", f"{prefix}_name_aggr": aggr,
                f"{prefix}_namespace": peer.namespace, f"{prefix}_type": "wep",
                f"{prefix}_labels": {"labels": list(peer.labels)} if labels else None}

    profile = f"0|__PROFILE__|__PROFILE__.kns.{dst.namespace if isinstance(dst, Pod) else 'x'}|allow|0"
    rec = {"start_time": T0 + start, "end_time": T0 + start + 300, **side(src, "source"), "source_port": None,
           **side(dst, "dest"), "dest_port": port, "proto": proto, "action": action, "reporter": reporter,
           "policies": {"enforced_policies": [profile]},
           "packets_in": 10 * started, "packets_out": 8 * started, "num_flows": started,
           "num_flows_started": started, "num_flows_completed": started}
    return json.dumps(rec, separators=(",", ":")).encode()


def goldmane(src: Pod, dst: Pod, *, reporter: int, action: int, started: int, port: int, start: int = 0) -> bytes:
    """A Goldmane emitter line (Go encoding/json of goldmane.Flow: enums as integers)."""
    key = {"source_name": src.pod.rsplit("-", 1)[0] + "-*", "source_namespace": src.namespace, "source_type": 1,
           "dest_name": dst.pod.rsplit("-", 1)[0] + "-*", "dest_namespace": dst.namespace, "dest_type": 1,
           "dest_port": port, "proto": "tcp", "reporter": reporter, "action": action}
    flow = {"Key": key, "start_time": T0 + start, "end_time": T0 + start + 15,
            "source_labels": list(src.labels), "dest_labels": list(dst.labels),
            "packets_in": 5 * started, "packets_out": 5 * started, "num_connections_started": started}
    return json.dumps(flow, separators=(",", ":")).encode()


def write_lines(path: Any, lines: list[bytes]) -> str:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)
