"""Builders of real-shaped Hubble and Calico lines for the core tests."""

from __future__ import annotations

import json
from typing import Any


def hubble_line(
    *,
    event_type: int = 5,
    verdict: str = "FORWARDED",
    direction: str = "INGRESS",
    time: str = "2024-05-01T10:00:00.000000000Z",
    src: dict[str, Any] | None = None,
    dst: dict[str, Any] | None = None,
    src_ip: str = "10.0.1.5",
    dst_ip: str = "10.0.2.7",
    l4: dict[str, Any] | None = None,
    reason: str | None = None,
    node: str = "kind-worker",
    envelope: bool = True,
    **extra: Any,
) -> bytes:
    flow: dict[str, Any] = {
        "time": time,
        "verdict": verdict,
        "IP": {"source": src_ip, "destination": dst_ip, "ipVersion": "IPv4"},
        "l4": l4 if l4 is not None else {"TCP": {"source_port": 40000, "destination_port": 7235}},
        "source": src if src is not None else {"ID": 1, "identity": 1234, "namespace": "network-policy-test",
                                               "labels": ["k8s:app=test-client"], "pod_name": "test-client"},
        "destination": dst if dst is not None else {
            "ID": 2, "identity": 5678, "namespace": "temporal", "labels": ["k8s:app=temporal-history"],
            "pod_name": "temporal-history-7d9f8b6c5d-x2x4z"},
        "Type": "L3_L4",
        "node_name": node,
        "event_type": {"type": event_type, **({"sub_type": 133} if event_type == 1 else {})},
        "traffic_direction": direction,
        "is_reply": False,
        "Summary": "TCP Flags: SYN",
    }
    if reason:
        flow["drop_reason"] = {"POLICY_DENIED": 133, "POLICY_DENY": 181, "AUTH_REQUIRED": 189}.get(reason, 0)
        flow["drop_reason_desc"] = reason
    flow.update(extra)
    obj = {"flow": flow, "node_name": node, "time": time} if envelope else flow
    return json.dumps(obj, separators=(",", ":")).encode()


def calico_line(**fields: Any) -> bytes:
    rec: dict[str, Any] = {
        "start_time": 1700000000, "end_time": 1700000300,
        "source_ip": None, "source_name": "-", "source_name_aggr": "test-client-6d4cf56db6-*",
        "source_namespace": "network-policy-test", "source_port": None, "source_type": "wep",
        "source_labels": {"labels": ["app=test-client"]},
        "dest_ip": None, "dest_name": "-", "dest_name_aggr": "temporal-history-7d9f8b6c5d-*",
        "dest_namespace": "temporal", "dest_port": 7235, "dest_type": "wep",
        "dest_labels": {"labels": ["app=temporal-history"]},
        "dest_service_namespace": "-", "dest_service_name": "-", "dest_service_port": "-",
        "proto": "tcp", "action": "deny", "reporter": "dst",
        "policies": {"enforced_policies": ["0|default|temporal/knp.default.temporal-history-policy|deny|-1"]},
        "bytes_in": 300, "bytes_out": 0, "packets_in": 5, "packets_out": 0, "num_flows": 1,
    }
    rec.update(fields)
    return json.dumps(rec).encode()
