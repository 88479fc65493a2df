"""The comparison points of the benchmark: a naive exporter and a bare typed decode."""

from __future__ import annotations

import json

import msgspec
from prometheus_client import CollectorRegistry, Counter

from exporter.naming import workload_from_pod_name

LABELS = ["policy", "direction", "source", "source_namespace", "destination", "destination_namespace",
          "destination_port", "protocol"]


class NaiveExporter:
    """What one writes first: json.loads every line, Counter.labels(...).inc() per event."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.dropped = Counter("networkpolicy_dropped_packets", "", [*LABELS, "reason"], registry=self.registry)
        self.allowed = Counter("networkpolicy_allowed_packets", "", LABELS, registry=self.registry)

    @staticmethod
    def _peer(ep: dict) -> tuple[str, str]:
        ns = ep.get("namespace", "")
        if not ns:
            return "world", ""
        workloads = ep.get("workloads") or []
        name = workloads[0]["name"] if workloads else workload_from_pod_name(ep.get("pod_name", ""))
        return f"{ns}/{name}", ns

    def ingest(self, lines: list[bytes]) -> None:
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            flow = obj.get("flow")
            if not flow:
                continue
            etype = flow.get("event_type", {}).get("type")
            if etype not in (1, 5) or flow.get("is_reply"):
                continue
            direction = flow.get("traffic_direction", "").lower() or "unknown"
            src, src_ns = self._peer(flow.get("source", {}))
            dst, dst_ns = self._peer(flow.get("destination", {}))
            l4 = flow.get("l4", {})
            proto, ports = next(iter(l4.items())) if l4 else ("", {})
            port = str(ports.get("destination_port", "")) if proto in ("TCP", "UDP", "SCTP") else ""
            policies = flow.get(f"{direction}_allowed_by") or flow.get(f"{direction}_denied_by") or []
            policy = ",".join(sorted({f"{p.get('namespace', '')}/{p['name']}" for p in policies})) or "default-deny"
            if flow.get("verdict") == "DROPPED":
                self.dropped.labels(policy, direction, src, src_ns, dst, dst_ns, port, proto,
                                    flow.get("drop_reason_desc", "")).inc()
            else:
                self.allowed.labels(policy, direction, src, src_ns, dst, dst_ns, port, proto).inc()


class _Workload(msgspec.Struct):
    name: str = ""
    kind: str = ""


class _Endpoint(msgspec.Struct):
    ID: int = 0
    identity: int = 0
    cluster_name: str = ""
    namespace: str = ""
    labels: list[str] = []
    pod_name: str = ""
    workloads: list[_Workload] = []


class _Policy(msgspec.Struct):
    name: str = ""
    namespace: str = ""
    labels: list[str] = []
    revision: str = ""


class _Ports(msgspec.Struct):
    source_port: int = 0
    destination_port: int = 0


class _L4(msgspec.Struct):
    TCP: _Ports | None = None
    UDP: _Ports | None = None


class _IP(msgspec.Struct):
    source: str = ""
    destination: str = ""


class _EventType(msgspec.Struct):
    type: int = 0
    sub_type: int = 0


class _Flow(msgspec.Struct):
    time: str = ""
    verdict: str = ""
    drop_reason_desc: str = ""
    IP: _IP | None = None
    l4: _L4 | None = None
    source: _Endpoint | None = None
    destination: _Endpoint | None = None
    node_name: str = ""
    event_type: _EventType | None = None
    traffic_direction: str = ""
    is_reply: bool | None = None
    ingress_allowed_by: list[_Policy] = []
    egress_allowed_by: list[_Policy] = []
    ingress_denied_by: list[_Policy] = []
    egress_denied_by: list[_Policy] = []


class _Line(msgspec.Struct):
    flow: _Flow | None = None
    node_name: str = ""
    time: str = ""


_decode_typed = msgspec.json.Decoder(_Line).decode


def bare_typed_decode(lines: list[bytes]) -> int:
    """Decode every line into typed structs of the fields the exporter uses; count nothing."""
    n = 0
    for line in lines:
        try:
            if _decode_typed(line).flow is not None:
                n += 1
        except msgspec.DecodeError:
            pass
    return n
