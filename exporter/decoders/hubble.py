"""Hubble flow JSON lines → FlowRecord.

Accepts `hubble observe -o json|jsonpb` lines and the Cilium agent's exporter-file lines
(`{"flow":{…},"node_name":…,"time":…}` or `lost_events`/`agent_event`/`debug_event`/`node_status`),
and the bare legacy flow object (`HUBBLE_COMPAT=legacy-json-output`). Keys are protojson proto names.

Only policy-verdict events (type 5), policy drop events (type 1, reasons 133/181/189) and L7 records an
L7 policy denied (type 129, verdict DROPPED) can count: everything else is rejected after decoding the
few scalar fields that tell, with endpoints and policy lists kept as raw JSON (validated, not
materialized) until an event is known to count. Lines the exporter aggregated (`aggregate`) stand for
the events they count; lines a field mask left without `event_type` are read as the contract says.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from exporter.decoders.drop_reasons import DROP_REASONS
from exporter.decoders.hubble_names import peers_from_endpoints, policy_names
from exporter.decoders.jsondecode import typed_json_decoder
from exporter.decoders.numbers import unsigned
from exporter.model import (
    HUBBLE_DROP,
    HUBBLE_L7,
    HUBBLE_UNTYPED_DROP,
    HUBBLE_VERDICT,
    MISSING_EVENT_TYPE,
    DecodeError,
    Family,
    FlowRecord,
    LostEvents,
    MissingEventType,
)
from exporter.naming import port_label
from exporter.timeparse import parse_rfc3339_ns, parse_rfc3339_seconds

_EMPTY = msgspec.Raw(b"")


class _EventType(msgspec.Struct, gc=False):
    type: int = 0
    sub_type: int = 0


class _IP(msgspec.Struct, gc=False):
    source: str = ""
    destination: str = ""


class _Ports(msgspec.Struct, gc=False):
    source_port: int = 0
    destination_port: int = 0


class _ICMP(msgspec.Struct, gc=False):
    type: int = 0
    code: int = 0


class _L4(msgspec.Struct, gc=False):
    TCP: _Ports | None = None
    UDP: _Ports | None = None
    SCTP: _Ports | None = None
    ICMPv4: _ICMP | None = None
    ICMPv6: _ICMP | None = None


class _Aggregate(msgspec.Struct, gc=False):
    """The exporter's aggregation counts (uint32; zero counts omitted)."""

    ingress_flow_count: int | str = 0
    egress_flow_count: int | str = 0
    unknown_direction_flow_count: int | str = 0


class _Flow(msgspec.Struct, gc=False):
    time: str = ""
    verdict: str | int = ""
    drop_reason: int = 0
    drop_reason_desc: str | int = ""
    IP: _IP | None = None
    l4: _L4 | None = None
    source: msgspec.Raw = _EMPTY
    destination: msgspec.Raw = _EMPTY
    node_name: str = ""
    event_type: _EventType | None = None
    traffic_direction: str | int = ""
    is_reply: bool | None = None
    policy_match_type: int = 0
    aggregate: _Aggregate | None = None
    ingress_allowed_by: msgspec.Raw = _EMPTY
    egress_allowed_by: msgspec.Raw = _EMPTY
    ingress_denied_by: msgspec.Raw = _EMPTY
    egress_denied_by: msgspec.Raw = _EMPTY


class _Lost(msgspec.Struct, gc=False):
    source: str | int = ""
    num_events_lost: str | int = "0"


class _Line(_Flow, gc=False):
    """An exporter/observe line; a bare legacy flow decodes into the inherited _Flow fields."""

    flow: _Flow | None = None
    lost_events: _Lost | None = None
    agent_event: msgspec.Raw = _EMPTY
    debug_event: msgspec.Raw = _EMPTY
    node_status: msgspec.Raw = _EMPTY


_decode = typed_json_decoder(_Line)

# Most lines of a real stream are trace events (type 4) that can never count. Their type is read
# from the raw bytes and the line skipped without decoding: protojson writes `"event_type":{"type":N`
# (N omitted when 0; spaces possible) near the end of the flow. Only a positive match of another type
# skips; anything else is fully decoded. The price: a skipped line is not validated beyond its `}`.
_EVENT_TYPE_KEY = b'"event_type"'
_COMPACT_KEY = b'"event_type":{"type":'
_COUNTABLE_NEXT = frozenset({b"1,", b"1}", b"5,", b"5}"})
_L7_NEXT = (b"129,", b"129}")
_SPACED_TYPE = re.compile(rb'\s*:\s*\{\s*"type"\s*:\s*(\d+)')
_COUNTABLE_TYPES = frozenset({b"1", b"5"})
_DROPPED_VERDICT = re.compile(rb'"verdict"\s*:\s*(?:"DROPPED"|2\b)')


def _cannot_count(line: bytes) -> bool:
    """True when the line is a flow of an event type that never counts (trace, allowed L7, debug ...)."""
    at = line.rfind(_COMPACT_KEY)
    if at >= 0:  # protojson's compact form: one search, then the bytes after the key
        if b"}" not in line[-3:]:
            return False
        at += 21
        after = line[at : at + 2]
        if after in _COUNTABLE_NEXT or not after[:1].isdigit():
            return False
        if line.startswith(_L7_NEXT, at):
            return _DROPPED_VERDICT.search(line) is None  # only denied L7 requests count
        return True
    at = line.rfind(_EVENT_TYPE_KEY)
    if at < 0 or b"}" not in line[-3:]:
        return False
    m = _SPACED_TYPE.match(line, at + 12)
    if m is None or m.group(1) in _COUNTABLE_TYPES:
        return False
    return m.group(1) != b"129" or _DROPPED_VERDICT.search(line) is None


VERDICT_NAMES: Final = {1: "FORWARDED", 2: "DROPPED", 3: "ERROR", 4: "AUDIT", 5: "REDIRECTED", 6: "TRACED",
                        7: "TRANSLATED"}
_VERDICT_FAMILY: Final = {
    "FORWARDED": Family.ALLOWED,
    "REDIRECTED": Family.ALLOWED,
    "DROPPED": Family.DROPPED,
    "AUDIT": Family.AUDIT,
}
DIRECTIONS: Final = {"INGRESS": "ingress", "EGRESS": "egress", 1: "ingress", 2: "egress"}
# Drop reasons that are policy decisions; their drop events twin a DROPPED policy verdict.
POLICY_DROP_REASONS: Final = frozenset({"POLICY_DENIED", "POLICY_DENY", "AUTH_REQUIRED"})
L7_POLICY_DENIED: Final = "L7_POLICY_DENIED"
# Verdicts a policy-verdict event can carry: a flow without event_type and one of these may be one.
_VERDICT_LIKE: Final = frozenset({"FORWARDED", "REDIRECTED", "AUDIT"})

def aggregate_count(aggregate: _Aggregate) -> int:
    """How many events an aggregated line stands for."""
    total = (unsigned(aggregate.ingress_flow_count, "$.flow.aggregate.ingress_flow_count")
             + unsigned(aggregate.egress_flow_count, "$.flow.aggregate.egress_flow_count")
             + unsigned(aggregate.unknown_direction_flow_count, "$.flow.aggregate.unknown_direction_flow_count"))
    if total == 0:
        raise DecodeError("aggregate without a count (a group stands for at least one flow)", "$.flow.aggregate")
    return total


def l4_fields(l4: _L4 | None) -> tuple[str, int, int]:
    """(protocol, source port, destination port or ICMP type); ("", 0, 0) without an L4 header."""
    if l4 is None:
        return "", 0, 0
    if l4.TCP is not None:
        return "TCP", l4.TCP.source_port, l4.TCP.destination_port
    if l4.UDP is not None:
        return "UDP", l4.UDP.source_port, l4.UDP.destination_port
    if l4.SCTP is not None:
        return "SCTP", l4.SCTP.source_port, l4.SCTP.destination_port
    if l4.ICMPv4 is not None:
        return "ICMPv4", 0, l4.ICMPv4.type
    if l4.ICMPv6 is not None:
        return "ICMPv6", 0, l4.ICMPv6.type
    return "", 0, 0


def reason_name(desc: str | int, number: int) -> str:
    """`drop_reason_desc`, else the name of the numeric `drop_reason` (contract: reason)."""
    if isinstance(desc, int):
        number, desc = desc, ""
    if desc:
        return desc
    if number:
        return DROP_REASONS.get(number, str(number))
    return ""


def decode_line(line: bytes) -> FlowRecord | LostEvents | MissingEventType | None:
    if _cannot_count(line):
        return None
    msg = _decode(line)
    flow = msg.flow
    if flow is None:
        if msg.lost_events is not None:
            lost = unsigned(msg.lost_events.num_events_lost, "$.lost_events.num_events_lost")
            return LostEvents(lost, str(msg.lost_events.source))
        if msg.event_type is None and not msg.verdict:
            return None  # agent_event, debug_event, node_status, or an object we do not know
        flow = msg  # bare legacy flow object
    return flow_record(flow, msg.node_name, msg.time)


def flow_record(flow: _Flow, envelope_node: str = "", envelope_time: str = "") -> FlowRecord | MissingEventType | None:
    verdict = flow.verdict
    if isinstance(verdict, int):
        verdict = VERDICT_NAMES.get(verdict, "")
    if flow.event_type is None:
        # A field mask dropped event_type: a DROPPED flow with a policy reason is a verdict or its drop
        # twin (paired with each other); any other verdict cannot be told from a trace event.
        if verdict == "DROPPED":
            event_type, family = HUBBLE_UNTYPED_DROP, Family.DROPPED
        else:
            return MISSING_EVENT_TYPE if verdict in _VERDICT_LIKE and not flow.is_reply else None
    else:
        event_type = flow.event_type.type
        if event_type == HUBBLE_VERDICT:
            verdict_family = _VERDICT_FAMILY.get(verdict)
            if verdict_family is None:
                return None
            family = verdict_family
        elif event_type == HUBBLE_DROP or (event_type == HUBBLE_L7 and verdict == "DROPPED"):
            family = Family.DROPPED
        else:
            return None  # traces, allowed L7 records, debug/capture events
    if flow.is_reply:
        return None
    if event_type == HUBBLE_L7:
        reason = L7_POLICY_DENIED
    else:
        number = flow.drop_reason or (
            flow.event_type.sub_type if event_type == HUBBLE_DROP and flow.event_type else 0)
        reason = reason_name(flow.drop_reason_desc, number) if family is not Family.ALLOWED else ""
        if event_type in (HUBBLE_DROP, HUBBLE_UNTYPED_DROP) and reason not in POLICY_DROP_REASONS:
            return None  # non-policy drops count nowhere
    direction = DIRECTIONS.get(flow.traffic_direction, "unknown")

    protocol, sport, dport = l4_fields(flow.l4)
    ip = flow.IP
    src_ip, dst_ip = (ip.source, ip.destination) if ip is not None else ("", "")

    if event_type != HUBBLE_DROP:  # verdicts, L7 records; a DROPPED flow without event_type may be a verdict
        if family is Family.ALLOWED:
            ingress, egress = flow.ingress_allowed_by, flow.egress_allowed_by
        else:
            ingress, egress = flow.ingress_denied_by, flow.egress_denied_by
        try:
            if direction == "ingress":
                policies = policy_names(ingress)
            elif direction == "egress":
                policies = policy_names(egress)
            else:
                policies = policy_names(ingress, egress)
        except msgspec.ValidationError as exc:
            raise DecodeError(f"policy list: {exc}", f"$.flow.{direction}_policies") from None
    else:
        policies = ()
    if family is Family.AUDIT and not reason:
        # Cilium sets no drop reason on audit verdicts: what would have denied it is a deny rule when
        # one is named, else the absence of an allow (default deny).
        reason = "POLICY_DENY" if policies else "POLICY_DENIED"

    timestamp = flow.time or envelope_time
    try:
        if not timestamp:
            time_ns = 0
        elif family is Family.ALLOWED:
            time_ns = parse_rfc3339_seconds(timestamp) * 1_000_000_000  # nothing pairs with an allow
        else:
            time_ns = parse_rfc3339_ns(timestamp)
    except ValueError as exc:
        raise DecodeError(str(exc), "$.flow.time") from None
    try:
        source, destination = peers_from_endpoints(flow.source, flow.destination, src_ip, dst_ip)
    except msgspec.ValidationError as exc:
        raise DecodeError(f"endpoint: {exc}", "$.flow.source/destination") from None
    events = 1 if flow.aggregate is None else aggregate_count(flow.aggregate)
    return FlowRecord(
        event_type,
        family,
        policies,
        direction,
        source,
        destination,
        port_label(protocol, dport),
        protocol,
        reason,
        events,
        time_ns,
        flow.node_name or envelope_node,
        sport,
        dport,
        flow.policy_match_type,
        flow.aggregate is not None,
    )
