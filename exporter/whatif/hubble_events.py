"""Hubble flow lines → connection events (exporter.whatif.events).

Any flow with addresses and an L4 header is an event, trace events and policy verdicts alike.
Lost events, agent events, non-policy drops and L7 drops give None. Lines of connections the
tracker already holds are recognised from their raw bytes (`hubble_decoder`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from exporter.decoders.hubble import (
    _IP,
    _L4,
    DIRECTIONS,
    POLICY_DROP_REASONS,
    VERDICT_NAMES,
    _EventType,
    l4_fields,
    reason_name,
)
from exporter.decoders.hubble_names import peers_from_endpoints
from exporter.decoders.jsondecode import typed_json_decoder
from exporter.model import HUBBLE_L7, DecodeError
from exporter.timeparse import _SCALE, parse_rfc3339_ns
from exporter.whatif.events import (
    ALLOWED,
    DENIED,
    PORT_PROTOCOLS,
    REPLY,
    TOUCHED,
    Event,
    FiveTuple,
    Touch,
)
from exporter.whatif.sides import Side, side_from_hubble

_PASSED = frozenset({"FORWARDED", "REDIRECTED", "AUDIT", "TRACED", "TRANSLATED"})

_EMPTY = msgspec.Raw(b"")


class _Flow(msgspec.Struct, gc=False):
    time: str = ""
    verdict: str | int = ""
    drop_reason: int = 0
    drop_reason_desc: str | int = ""
    IP: _IP | None = None
    l4: _L4 | None = None
    source: msgspec.Raw = _EMPTY
    destination: msgspec.Raw = _EMPTY
    event_type: _EventType | None = None
    traffic_direction: str | int = ""
    is_reply: bool | None = None
    destination_service: msgspec.Raw = _EMPTY


class _HubbleLine(_Flow, gc=False):
    flow: _Flow | None = None
    lost_events: msgspec.Raw = _EMPTY


_decode_hubble = typed_json_decoder(_HubbleLine)


# A reply never counts: its line is skipped without decoding when compact protojson says so
# (`"is_reply":true`, near the end of the flow: searched from the end); REPLY marks it for the tracker.
_IS_REPLY = b'"is_reply":'


def _marked_reply(line: bytes) -> bool:
    at = line.rfind(_IS_REPLY)
    return at >= 0 and line.startswith(b"true", at + 11)


def decode_hubble(line: bytes) -> Event | None:
    if _marked_reply(line):
        return REPLY
    return _decode_unmarked(line)


def _decode_unmarked(line: bytes) -> Event | None:
    """decode_hubble of a line whose raw bytes do not mark it as a reply."""
    msg = _decode_hubble(line)
    flow: _Flow | None = msg.flow
    if flow is None:
        if msg.lost_events or (msg.event_type is None and not msg.verdict):
            return None
        flow = msg  # the bare legacy flow object
    verdict = flow.verdict
    if isinstance(verdict, int):
        verdict = VERDICT_NAMES.get(verdict, "")
    event_type = flow.event_type.type if flow.event_type is not None else 0
    if verdict == "DROPPED":
        if event_type == HUBBLE_L7:
            return None  # an L7 policy denied a request: the connection itself was allowed
        if reason_name(flow.drop_reason_desc, flow.drop_reason) not in POLICY_DROP_REASONS:
            return None  # dropped for another reason: says nothing about policies
        outcome = DENIED
    elif verdict in _PASSED:
        outcome = ALLOWED
    else:
        return None  # ERROR, or no verdict
    protocol, sport, dport = l4_fields(flow.l4)
    ip = flow.IP
    if not protocol or ip is None or not ip.source or not ip.destination:
        return None  # no 5-tuple: not a connection we can track
    timestamp = flow.time or msg.time
    try:
        time_ns = _time_ns(timestamp) if timestamp else 0
    except ValueError:
        raise DecodeError(f"malformed timestamp {timestamp!r}", "$.flow.time") from None
    sides_key = (bytes(flow.source), bytes(flow.destination), ip.source, ip.destination)
    sides = _sides.get(sides_key)
    if sides is None:
        try:
            src_peer, dst_peer = peers_from_endpoints(flow.source, flow.destination, ip.source, ip.destination)
        except msgspec.ValidationError as exc:
            raise DecodeError(f"endpoint: {exc}", "$.flow.source/destination") from None
        if len(_sides) >= _SIDES_CACHE_SIZE:
            _sides.clear()
        sides = _sides[sides_key] = (side_from_hubble(src_peer), side_from_hubble(dst_peer))
    if flow.destination_service and not sides[1].is_pod:
        return None  # to a Service address before translation: the translated flow names the pod
    return Event(
        sides[0],
        sides[1],
        protocol,
        dport if protocol in PORT_PROTOCOLS else None,
        time_ns,
        outcome,
        DIRECTIONS.get(flow.traffic_direction, "") if outcome == DENIED else "",
        (ip.source, sport, ip.destination, dport, protocol),
        flow.is_reply,
    )


# Both ends of a flow, keyed by the raw endpoint JSON and the addresses: the same pairs talk all day.
_SIDES_CACHE_SIZE = 50_000
_sides: dict[tuple[bytes, bytes, str, str], tuple[Side, Side]] = {}
_last_second: list[Any] = ["", 0]  # the last UTC "YYYY-MM-DDTHH:MM:SS" parsed and its epoch second


def _time_ns(value: str) -> int:
    """parse_rfc3339_ns, with a fast path for UTC times within the second parsed last."""
    if len(value) > 20 and value[19] == "." and value[-1] == "Z" and value[:19] == _last_second[0]:
        digits = value[20:-1]
        if 0 < len(digits) <= 9 and digits.isdigit() and digits.isascii():
            return _last_second[1] + int(digits) * _SCALE[len(digits)]
    ns = parse_rfc3339_ns(value)
    if value[-1] == "Z":  # the same clock second with another offset is another second
        _last_second[0], _last_second[1] = value[:19], ns - ns % 1_000_000_000
    return ns


# Most lines of a stream are trace events of connections already seen. Their 5-tuple and time are read
# from the raw bytes and, when the tracker holds that connection, the line is not decoded further.
# Anything else takes the full path. Compact protojson, as Cilium's exporter and `hubble observe -o json`
# write it (time, uuid, verdict, ethernet, IP, l4 in that order), is read in one match from the line's start:
# `IP` then `l4`: the 5-tuple's raw bytes (group 1, a cache key), addresses, protocol and ports
_IP_L4 = (rb'"IP":\{"source":"(([^"]+)","destination":"([^"]+)"[^}]*\},'
          rb'"l4":\{"(TCP|UDP|SCTP)":\{"source_port":(\d+),"destination_port":(\d+))')
_COMPACT = re.compile(
    rb'\{"flow":\{"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{1,9})Z",(?:"uuid":"[^"]*",)?'
    rb'"verdict":"FORWARDED",(?:"ethernet":\{[^}]*\},)?' + _IP_L4)
# other field orders by searching: a passed verdict near the start, `l4` right after `IP`, the flow's `time` first
_IP_KEY = b'"IP":{"source":"'
_FAST_5TUPLE = re.compile(_IP_L4)
_TIME_KEY = b'"time":"'
_FORWARDED = b'"verdict":"FORWARDED"'
_HEAD = 320  # bytes from the start within which compact lines carry the flow's time and verdict
_FIVES_CACHE_SIZE = 20_000  # raw `IP`..`l4` bytes → 5-tuple: a connection's lines repeat them
Decoder = Callable[[bytes], Event | Touch | None]
_last_second_raw: list[Any] = [b"", 0]  # the last UTC b"YYYY-MM-DDTHH:MM:SS" parsed and its epoch ns


def _raw_time_ns(raw: bytes) -> int:
    """_time_ns of the raw bytes, without decoding them when the second is the one parsed last."""
    if raw[:19] == _last_second_raw[0] and raw[19:20] == b"." and raw[-1:] == b"Z":
        digits = raw[20:-1]
        if 0 < len(digits) <= 9 and digits.isdigit():
            return _last_second_raw[1] + int(digits) * _SCALE[len(digits)]
    ns = _time_ns(raw.decode())
    if raw[-1:] == b"Z":  # the same clock second with another offset is another second
        _last_second_raw[0], _last_second_raw[1] = raw[:19], ns - ns % 1_000_000_000
    return ns


def _utc_second_ns(second: bytes) -> int:
    """Epoch ns of a UTC b"YYYY-MM-DDTHH:MM:SS" (ValueError when it is no time)."""
    if second != _last_second_raw[0]:
        _last_second_raw[1] = parse_rfc3339_ns(second.decode() + "Z")
        _last_second_raw[0] = second
    return int(_last_second_raw[1])


def hubble_decoder(active: Mapping[FiveTuple, Any], window_ns: int,
                   touch: Callable[[FiveTuple, Any, int], None] | None = None) -> Decoder:
    """decode_hubble with the fast path for lines of the connections in `active` (the tracker's). With `touch`
    (the tracker's, when each event is added before the next line is decoded), the decoder applies the
    lines of live connections itself and returns TOUCHED for them."""
    fives: dict[bytes, FiveTuple] = {}

    def five_tuple(match: re.Match[bytes], span: int) -> FiveTuple:
        """The 5-tuple of the groups span (source, destination, protocol, source port, destination port)."""
        five = fives.get(match[span])
        if five is None:
            if len(fives) >= _FIVES_CACHE_SIZE:
                fives.clear()
            five = fives[match[span]] = (match[span + 1].decode(), int(match[span + 4]), match[span + 2].decode(),
                                         int(match[span + 5]), match[span + 3].decode())
        return five

    def decode(line: bytes) -> Event | Touch | None:
        at = line.rfind(_IS_REPLY)
        if at >= 0 and line.startswith(b"true", at + 11):
            return REPLY
        compact = _COMPACT.match(line)
        if compact is not None:
            five = fives.get(compact[3]) or five_tuple(compact, 3)
            conn = active.get(five)
            if conn is not None:
                second, digits = compact.group(1, 2)
                try:
                    t = (_last_second_raw[1] if second == _last_second_raw[0] else _utc_second_ns(second)) + \
                        int(digits) * _SCALE[len(digits)]
                except ValueError:
                    return _decode_unmarked(line)  # reported with its field by the full path
                if not conn.last_ns or t - conn.last_ns <= window_ns:
                    if touch is None:
                        return Touch(five, t)
                    touch(five, conn, t)
                    return TOUCHED
            return _decode_unmarked(line)
        if line.find(_FORWARDED, 0, _HEAD) >= 0:
            at = line.find(_IP_KEY)
            match = _FAST_5TUPLE.match(line, at) if at >= 0 else None
            if match is not None:
                five = five_tuple(match, 1)
                conn = active.get(five)
                if conn is not None:
                    at = line.find(_TIME_KEY, 0, _HEAD)
                    if at < 0:
                        at = line.find(_TIME_KEY)  # not among the first fields: the first anywhere
                    try:
                        t = _raw_time_ns(line[at + 8:line.find(b'"', at + 8)]) if at >= 0 else 0
                    except (ValueError, UnicodeDecodeError):
                        return _decode_unmarked(line)  # reported with its field by the full path
                    if not t or not conn.last_ns or t - conn.last_ns <= window_ns:
                        if touch is None:
                            return Touch(five, t)
                        touch(five, conn, t)
                        return TOUCHED
        return _decode_unmarked(line)

    return decode
