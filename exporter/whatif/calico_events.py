"""Calico flows.log records and Goldmane flows → connection events (exporter.whatif.events).

Each record carries its own count of started connections and the end that reported it; the
tracker (exporter.whatif.tracking.CalicoPairing) pairs the two ends of a flow.
"""

from __future__ import annotations

from typing import Any

import msgspec

from exporter.decoders.calico import calico_peer
from exporter.decoders.goldmane import ACTIONS as GOLDMANE_ACTIONS
from exporter.decoders.goldmane import ENDPOINT_TYPES as GOLDMANE_ENDPOINT_TYPES
from exporter.decoders.goldmane import REPORTERS as GOLDMANE_REPORTERS
from exporter.decoders.jsondecode import typed_json_decoder
from exporter.model import DecodeError
from exporter.naming import protocol_label
from exporter.whatif.events import ALLOWED, DENIED, EGRESS, INGRESS, PORT_PROTOCOLS, Event
from exporter.whatif.sides import side_from_calico


class _CalicoRecord(msgspec.Struct, gc=False):
    start_time: int | float | None = None
    end_time: int | float | None = None
    source_ip: str | None = None
    source_name: str | None = None
    source_name_aggr: str | None = None
    source_namespace: str | None = None
    source_type: str | None = None
    source_labels: Any = None
    dest_ip: str | None = None
    dest_name: str | None = None
    dest_name_aggr: str | None = None
    dest_namespace: str | None = None
    dest_port: int | None = None
    dest_type: str | None = None
    dest_labels: Any = None
    proto: str | int | None = None
    action: str = ""
    reporter: str | None = None
    num_flows_started: int | None = None
    num_flows: int | None = None


_decode_calico = typed_json_decoder(_CalicoRecord)
_CALICO_REPORTERS = {"src": "src", "dst": "dst"}


def label_list(value: Any, field: str) -> tuple[str, ...] | None:
    """`{"labels": ["k=v"]}`, `["k=v"]` or `{"k": "v"}` → ("k=v", ...); None when absent."""
    if value is None:
        return None
    items = value.get("labels") if isinstance(value, dict) and "labels" in value else value
    if items is None:
        return None
    if isinstance(items, dict):
        return tuple(sorted(f"{k}={v}" for k, v in items.items()))
    if isinstance(items, list) and all(isinstance(i, str) for i in items):
        return tuple(sorted(items))
    raise DecodeError("expected a list of \"key=value\" strings", field)


def _reporter(value: str | None) -> str:
    """`src`/`dst`, also in the combined forms (`dst, fwd`); "" for `fwd` alone."""
    for part in (value or "").replace(" ", "").split(","):
        if part in _CALICO_REPORTERS:
            return part
    return ""


def _seconds_ns(value: float | None) -> int:
    return int(value * 1_000_000_000) if value else 0


def decode_calico(line: bytes) -> Event | None:
    rec = _decode_calico(line)
    if rec.action not in ("allow", "deny"):
        raise DecodeError(f"unknown action {rec.action!r}" if rec.action else "missing action", "$.action")
    reporter = _reporter(rec.reporter)
    if not reporter:
        return None  # forwarded by a host: not a pod's connection
    protocol = protocol_label(str(rec.proto)) if rec.proto is not None else ""
    count = rec.num_flows_started if rec.num_flows_started is not None else (rec.num_flows or 1)
    src = side_from_calico(
        calico_peer(rec.source_type, rec.source_name, rec.source_name_aggr, rec.source_namespace, msgspec.Raw(b""),
                    rec.source_ip),
        label_list(rec.source_labels, "$.source_labels"),
    )
    dst = side_from_calico(
        calico_peer(rec.dest_type, rec.dest_name, rec.dest_name_aggr, rec.dest_namespace, msgspec.Raw(b""),
                    rec.dest_ip),
        label_list(rec.dest_labels, "$.dest_labels"),
    )
    outcome = DENIED if rec.action == "deny" else ALLOWED
    return Event(
        src, dst, protocol, rec.dest_port if protocol in PORT_PROTOCOLS else None,
        _seconds_ns(rec.start_time), outcome, (EGRESS if reporter == "src" else INGRESS) if outcome == DENIED else "",
        started=count, reporter=reporter, end_ns=_seconds_ns(rec.end_time or rec.start_time),
    )


# -- Goldmane -----------------------------------------------------------------------------------

class _GoldmaneKey(msgspec.Struct, gc=False):
    source_name: str = ""
    source_namespace: str = ""
    source_type: int | str = 0
    dest_name: str = ""
    dest_namespace: str = ""
    dest_type: int | str = 0
    dest_port: int = 0
    proto: str = ""
    reporter: int | str = 0
    action: int | str = 0


class _GoldmaneFlow(msgspec.Struct, gc=False):
    Key: _GoldmaneKey | None = None
    start_time: int = 0
    end_time: int = 0
    source_labels: Any = None
    dest_labels: Any = None
    num_connections_started: int = 0


_decode_goldmane = typed_json_decoder(_GoldmaneFlow)


def _enum(table: dict[int | str, str], value: int | str, field: str) -> str:
    try:
        return table[value.lower() if isinstance(value, str) else value]
    except KeyError:
        raise DecodeError(f"unknown value {value!r}", field) from None


def decode_goldmane(line: bytes) -> Event | None:
    flow = _decode_goldmane(line)
    key = flow.Key
    if key is None:
        raise DecodeError("missing Key", "$.Key")
    if key.action in (0, ""):
        raise DecodeError("missing action", "$.Key.action")
    action = _enum(GOLDMANE_ACTIONS, key.action, "$.Key.action")
    if action == "pass" or key.reporter in (0, ""):
        return None
    reporter = "src" if _enum(GOLDMANE_REPORTERS, key.reporter, "$.Key.reporter") == EGRESS else "dst"
    src_type = GOLDMANE_ENDPOINT_TYPES.get(key.source_type) if key.source_type not in (0, "") else None
    dst_type = GOLDMANE_ENDPOINT_TYPES.get(key.dest_type) if key.dest_type not in (0, "") else None
    protocol = protocol_label(key.proto) if key.proto else ""
    src = side_from_calico(calico_peer(src_type, None, key.source_name, key.source_namespace, msgspec.Raw(b""), None),
                           label_list(flow.source_labels, "$.source_labels"))
    dst = side_from_calico(calico_peer(dst_type, None, key.dest_name, key.dest_namespace, msgspec.Raw(b""), None),
                           label_list(flow.dest_labels, "$.dest_labels"))
    outcome = DENIED if action == "deny" else ALLOWED
    return Event(
        src, dst, protocol, key.dest_port if protocol in PORT_PROTOCOLS else None,
        flow.start_time * 1_000_000_000, outcome,
        (EGRESS if reporter == "src" else INGRESS) if outcome == DENIED else "",
        started=flow.num_connections_started, reporter=reporter,
        end_ns=(flow.end_time or flow.start_time) * 1_000_000_000,
    )
