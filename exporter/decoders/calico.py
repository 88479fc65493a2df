"""Calico Enterprise/Cloud `flows.log` JSON lines → FlowRecord.

Each record adds `packets_in + packets_out` to dropped (`action` deny) or allowed (`action` allow).
Aggregation writes `null` for addresses and ports and `"-"` for names, namespaces and services;
`*_name_aggr` is always set (a pod's generateName + `*`, `pub`/`pvt` for networks).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

import msgspec

from exporter.decoders.calico_policies import PolicyHit, PolicyStringError, deciding_hit, parse_policy_string
from exporter.decoders.jsondecode import typed_json_decoder
from exporter.decoders.numbers import unsigned
from exporter.model import CALICO_FLOW, DecodeError, Family, FlowRecord, Peer
from exporter.naming import (
    HOST,
    UNKNOWN,
    WORLD,
    pod_peer_name,
    port_label,
    protocol_label,
    workload_from_labels,
    workload_from_pod_name,
)

_DIRECTIONS: Final = {"dst": "ingress", "src": "egress", "fwd": "forward"}
_ACTIONS: Final = {"allow": Family.ALLOWED, "deny": Family.DROPPED}
POLICY_DENIED: Final = "POLICY_DENIED"
_NONE: Final = (None, "-", "")


class _Policies(msgspec.Struct, gc=False):
    # pending_policies is never read (it may show a staged deny on allowed traffic), so not declared;
    # all_policies is decoded only when enforced_policies is absent.
    enforced_policies: tuple[str, ...] | None = None  # a tuple: part of the template cache key as decoded
    all_policies: msgspec.Raw = msgspec.Raw(b"")
    # Hits of host-endpoint policies with applyOnForward: they decide a `fwd`-only record.
    transit_policies: tuple[str, ...] | None = None


class _Record(msgspec.Struct, gc=False):
    start_time: int | float | None = None
    end_time: int | float | None = None
    source_ip: str | None = None
    source_name: str | None = None
    source_name_aggr: str | None = None
    source_namespace: str | None = None
    source_port: int | None = None
    source_type: str | None = None
    source_labels: msgspec.Raw = msgspec.Raw(b"")
    dest_ip: str | None = None
    dest_name: str | None = None
    dest_name_aggr: str | None = None
    dest_namespace: str | None = None
    dest_port: int | None = None
    dest_type: str | None = None
    dest_labels: msgspec.Raw = msgspec.Raw(b"")
    proto: str | int | None = None
    action: str = ""
    reporter: str | None = None
    policies: _Policies | None = None
    packets_in: int | None = None
    packets_out: int | None = None


_decode = typed_json_decoder(_Record)
_decode_record = msgspec.json.Decoder(_Record).decode  # the hot path; _decode words its errors
_decode_strings = msgspec.json.Decoder(tuple[str, ...] | None).decode
_decode_any = msgspec.json.Decoder().decode


def _present(value: str | None) -> str:
    return "" if value is None or value == "-" else value


def _labels(raw: msgspec.Raw) -> dict[str, str]:
    try:
        parsed: Any = _decode_any(raw) if raw else None
    except msgspec.DecodeError:
        return {}
    items = parsed.get("labels") if isinstance(parsed, dict) else parsed
    out: dict[str, str] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, str):
                key, _, value = item.partition("=")
                out[key] = value
    elif isinstance(items, dict):
        out = {str(k): str(v) for k, v in items.items()}
    return out


def calico_peer(kind: str | None, name: str | None, aggr: str | None, namespace: str | None,
                labels: msgspec.Raw, ip: str | None) -> Peer:
    """Contract naming for one side of a Calico flow (wep, hep, ns, net)."""
    if not ip and (aggr not in _NONE or name not in _NONE):
        return _cached_peer(kind, name, aggr, namespace)
    return _peer(kind, name, aggr, namespace, labels, ip)


@lru_cache(maxsize=65536)
def _cached_peer(kind: str | None, name: str | None, aggr: str | None, namespace: str | None) -> Peer:
    return _peer(kind, name, aggr, namespace, msgspec.Raw(b""), None)


def _peer(kind: str | None, name: str | None, aggr: str | None, namespace: str | None,
          labels: msgspec.Raw, ip: str | None) -> Peer:
    ns = _present(namespace)
    name_ = _present(name)
    aggr_ = _bare_aggr(aggr)
    addr = ip or ""
    if kind == "wep":
        if name_:
            workload = workload_from_pod_name(name_)
        elif aggr_:
            workload = workload_from_pod_name(aggr_)
        else:
            workload = workload_from_labels(_labels(labels))
        return Peer(pod_peer_name(ns, workload), ns, addr, name_)
    if kind == "hep":
        return Peer(HOST, "", addr)
    if kind == "net":
        return Peer(WORLD, "", addr)
    if kind == "ns":
        set_name = name_ or aggr_
        return Peer(pod_peer_name(ns, set_name) if set_name else UNKNOWN, "", addr)
    return Peer(UNKNOWN, "", addr)


def _deciding_policies(strings: tuple[str, ...], action: str) -> tuple[str, ...]:
    """The deciding policy's label for a record's policy strings; () for a profile or no hit."""
    hits: list[PolicyHit] = [parse_policy_string(s) for s in strings]
    hit = deciding_hit(hits, action)
    return (hit.label,) if hit is not None and not hit.profile else ()


# What a record's labels depend on, decoded once per distinct flow key: aggregated records repeat
# the same names, namespaces, port and policies every flush interval. The last item tells that a peer
# was named from its labels, which are then part of the key (in _labelled).
_Template = tuple[Family, tuple[str, ...], str, Peer, Peer, str, str, str, bool]
_TEMPLATE_CACHE_SIZE: Final = 65536
_templates: dict[tuple[Any, ...], _Template] = {}
_labelled: dict[tuple[Any, ...], _Template] = {}


def direction(reporter: str | None) -> str:
    """`dst` → ingress, `src` → egress, in combined forms too (`dst, fwd`); `fwd` alone → forward."""
    if not reporter:
        return "unknown"
    known = _DIRECTIONS.get(reporter)
    if known is not None:
        return known
    parts = {part.strip() for part in reporter.split(",")}
    for name in ("dst", "src", "fwd"):
        if name in parts:
            return _DIRECTIONS[name]
    return "unknown"


def decode_line(line: bytes) -> FlowRecord | None:
    try:
        rec = _decode_record(line)
    except msgspec.DecodeError:
        rec = _decode(line)  # raises the DecodeError that names the problem
    packets = unsigned(rec.packets_in, "$.packets_in") + unsigned(rec.packets_out, "$.packets_out")
    pol = rec.policies
    strings = pol.enforced_policies if pol is not None else None
    key = (rec.action, rec.reporter, rec.proto, rec.dest_port, rec.source_type, rec.source_name,
           rec.source_name_aggr, rec.source_namespace, rec.source_ip, rec.dest_type, rec.dest_name,
           rec.dest_name_aggr, rec.dest_namespace, rec.dest_ip,
           strings if strings is not None else (bytes(pol.all_policies) if pol is not None else None),
           pol.transit_policies if pol is not None else None)
    template = _templates.get(key)
    if template is None:
        template = _template(rec)
        if len(_templates) >= _TEMPLATE_CACHE_SIZE:
            _templates.clear()
        _templates[key] = template
    if template[8]:  # a peer named by its labels (no name, no aggregated name): the labels key it too
        template = _labelled_template(key, rec)
    if packets <= 0:
        return None
    family, policies, direction, source, destination, port, protocol, reason, _ = template
    end = rec.end_time or rec.start_time or 0
    return FlowRecord(CALICO_FLOW, family, policies, direction, source, destination, port, protocol, reason,
                      packets, int(end * 1_000_000_000), "", rec.source_port or 0, rec.dest_port or 0)


def _labelled_template(key: tuple[Any, ...], rec: _Record) -> _Template:
    labelled = (key, bytes(rec.source_labels), bytes(rec.dest_labels))
    template = _labelled.get(labelled)
    if template is None:
        if len(_labelled) >= _TEMPLATE_CACHE_SIZE:
            _labelled.clear()
        template = _labelled[labelled] = _template(rec)
    return template


def _named_by_labels(kind: str | None, name: str | None, aggr: str | None) -> bool:
    """Whether _peer names this side from its labels (a workload endpoint with no name to go by)."""
    return kind == "wep" and not _present(name) and not _bare_aggr(aggr)


def _bare_aggr(aggr: str | None) -> str:
    """`web-7d4b9c8f5b-*` → `web-7d4b9c8f5b`; None and `-` → ''."""
    value = _present(aggr)
    return value[:-1].rstrip("-") if value.endswith("*") else value


def _template(rec: _Record) -> _Template:
    """The label values of a record (everything but its counts and time); DecodeError when malformed."""
    family = _ACTIONS.get(rec.action)
    if family is None:
        if rec.action:
            raise DecodeError(f"unknown action {rec.action!r}", "$.action")
        raise DecodeError("missing action", "$.action")
    policies: tuple[str, ...] = ()
    pol = rec.policies
    if pol is not None:
        try:
            strings = pol.enforced_policies
            if strings is None and pol.all_policies:
                strings = _decode_strings(pol.all_policies)
        except msgspec.ValidationError as exc:
            raise DecodeError(str(exc), "$.policies.all_policies") from None
        if not strings and pol.transit_policies:
            strings = pol.transit_policies  # forwarded traffic: decided by host-endpoint policies
        if strings:
            try:
                policies = _deciding_policies(strings, rec.action)
            except PolicyStringError as exc:
                raise DecodeError(str(exc), "$.policies") from None
    protocol = protocol_label(str(rec.proto)) if rec.proto is not None else ""
    return (
        family,
        policies,
        direction(rec.reporter),
        calico_peer(rec.source_type, rec.source_name, rec.source_name_aggr, rec.source_namespace,
                    rec.source_labels, rec.source_ip),
        calico_peer(rec.dest_type, rec.dest_name, rec.dest_name_aggr, rec.dest_namespace,
                    rec.dest_labels, rec.dest_ip),
        port_label(protocol, rec.dest_port),
        protocol,
        POLICY_DENIED if family is Family.DROPPED else "",
        _named_by_labels(rec.source_type, rec.source_name, rec.source_name_aggr)
        or _named_by_labels(rec.dest_type, rec.dest_name, rec.dest_name_aggr),
    )
