"""Goldmane flows as the emitter writes them: Go encoding/json of goldmane.Flow (enums as integers,
zero values omitted). Enum numbers from projectcalico/calico goldmane/proto/api.proto."""

from __future__ import annotations

import json
from typing import Any

ALLOW, DENY, PASS = 1, 2, 3
SRC, DST = 1, 2
WEP, HEP, NETWORKSET, NETWORK = 1, 2, 3, 4
CALICO_NP, GNP, K8S_NP, PROFILE, END_OF_TIER = 1, 2, 6, 9, 10


def hit(kind: int, name: str = "", namespace: str = "", tier: str = "default", action: int = ALLOW,
        index: int = 0, rule: int = 0, trigger: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, "namespace": namespace, "name": name, "tier": tier, "action": action,
                           "policy_index": index, "rule_index": rule}
    if trigger:
        out["trigger"] = trigger
    return {k: v for k, v in out.items() if v not in (0, "")}


def goldmane_flow(action: int = DENY, reporter: int = DST, packets_in: int = 5, packets_out: int = 0,
                  enforced: list[dict[str, Any]] | None = None, pending: list[dict[str, Any]] | None = None,
                  **key: Any) -> bytes:
    k: dict[str, Any] = {
        "source_name": "test-client-6d4cf56db6-*", "source_namespace": "network-policy-test", "source_type": WEP,
        "dest_name": "temporal-history-7d9f8b6c5d-*", "dest_namespace": "temporal", "dest_type": WEP,
        "dest_port": 7234, "proto": "tcp", "reporter": reporter, "action": action,
    }
    k.update(key)
    policies: dict[str, Any] = {}
    if enforced is not None:
        policies["enforced_policies"] = enforced
    if pending is not None:
        policies["pending_policies"] = pending
    if policies:
        k["policies"] = policies
    flow: dict[str, Any] = {"Key": {kk: v for kk, v in k.items() if v not in (0, "")},
                            "start_time": 1764357600, "end_time": 1764357615,
                            "source_labels": ["app=test-client"], "dest_labels": ["app=temporal-history"],
                            "packets_in": packets_in, "packets_out": packets_out, "bytes_in": 300 * packets_in}
    return json.dumps({kk: v for kk, v in flow.items() if v not in (0, "")}, separators=(",", ":")).encode()


# A default-deny at ingress: the tier's end-of-tier drop, charged to the K8s policy that selected the pod.
DENIED_BY_END_OF_TIER = goldmane_flow(enforced=[hit(END_OF_TIER, tier="default", action=DENY, rule=-1,
                                                    trigger=hit(K8S_NP, "temporal-history-policy", "temporal"))])
