"""Calico Open Source 3.30+ Goldmane flows (the emitter's POSTed NDJSON) → FlowRecord.

One line is Go `encoding/json` of `goldmane.Flow`: `{"Key":{…},"start_time":…,"packets_in":…}` with
proto field names, zero values omitted and enums as integers (older builds wrote `reporter`, `action`,
`source_type` as strings: both are accepted). [projectcalico/calico goldmane/proto/api.proto]

The counting semantics are the flows.log ones (exporter.decoders.calico): `packets_in + packets_out`
added to dropped (action Deny) or allowed (Allow); the deciding policy from `enforced_policies` only
(never `pending_policies`): for a deny the deny hit, for an allow the last allow hit (earlier ones are
pass); a Profile hit is `default-allow`; an EndOfTier hit is charged to the policy its `trigger` names.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from exporter.decoders.calico import POLICY_DENIED, calico_peer
from exporter.decoders.calico_policies import PolicyHit, deciding_hit, policy_value
from exporter.decoders.jsondecode import typed_json_decoder
from exporter.decoders.numbers import unsigned
from exporter.model import CALICO_FLOW, DecodeError, Family, FlowRecord
from exporter.naming import port_label, protocol_label

# goldmane.Action, goldmane.Reporter, goldmane.EndpointType, goldmane.PolicyKind (api.proto).
_Enum = dict[int | str, str]
ACTIONS: Final[_Enum] = {1: "allow", 2: "deny", 3: "pass", "allow": "allow", "deny": "deny", "pass": "pass"}
REPORTERS: Final[_Enum] = {1: "egress", 2: "ingress", "src": "egress", "dst": "ingress"}
ENDPOINT_TYPES: Final[_Enum] = {1: "wep", 2: "hep", 3: "ns", 4: "net", "wep": "wep", "hep": "hep", "ns": "ns",
                                "net": "net", "pub": "net", "pvt": "net"}
KIND_STAGED: Final = frozenset({3, 4, 5})
KIND_PROFILE: Final = 9
KIND_END_OF_TIER: Final = 10
KIND_NAMES: Final = {"CalicoNetworkPolicy": 1, "GlobalNetworkPolicy": 2, "CalicoGlobalNetworkPolicy": 2,
                     "StagedNetworkPolicy": 3, "CalicoStagedNetworkPolicy": 3, "StagedGlobalNetworkPolicy": 4,
                     "CalicoStagedGlobalNetworkPolicy": 4, "StagedKubernetesNetworkPolicy": 5,
                     "NetworkPolicy": 6, "AdminNetworkPolicy": 7, "BaselineAdminNetworkPolicy": 8,
                     "Profile": KIND_PROFILE, "EndOfTier": KIND_END_OF_TIER}
_LEGACY_PREFIXES: Final = ("knp.default.", "kanp.", "kbanp.")


class _Hit(msgspec.Struct, gc=False):
    kind: int | str = 0
    namespace: str = ""
    name: str = ""
    tier: str = ""
    action: int | str = 0
    policy_index: int = 0
    rule_index: int = 0
    trigger: _Hit | None = None


class _Trace(msgspec.Struct, gc=False):
    enforced_policies: list[_Hit] | None = None  # `pending_policies` is never counted: not decoded


class _Key(msgspec.Struct, gc=False):
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
    policies: _Trace | None = None


class _Flow(msgspec.Struct, gc=False):
    Key: _Key | None = None
    start_time: int = 0
    end_time: int = 0
    source_labels: msgspec.Raw = msgspec.Raw(b"")  # ["k=v", ...]: decoded only when a name needs them
    dest_labels: msgspec.Raw = msgspec.Raw(b"")
    packets_in: int = 0
    packets_out: int = 0


_decode = typed_json_decoder(_Flow)


def _enum(table: dict[int | str, str], value: int | str, field: str) -> str:
    key = value.lower() if isinstance(value, str) else value
    try:
        return table[key]
    except KeyError:
        raise DecodeError(f"unknown value {value!r}", field) from None


def _kind(hit: _Hit) -> int:
    return KIND_NAMES.get(hit.kind, 0) if isinstance(hit.kind, str) else hit.kind


def hit_label(hit: _Hit) -> str:
    """The contract policy value of a hit (EndOfTier: of the policy its trigger names)."""
    named = hit.trigger if _kind(hit) == KIND_END_OF_TIER and hit.trigger is not None else hit
    name = named.name
    for prefix in _LEGACY_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    return policy_value(named.tier, named.namespace, name)


def _policy_hits(hits: list[_Hit]) -> list[PolicyHit]:
    out = []
    for i, hit in enumerate(hits):
        action = _enum(ACTIONS, hit.action, f"$.Key.policies.enforced_policies[{i}].action")
        if _kind(hit) == KIND_PROFILE:
            out.append(PolicyHit(hit.policy_index, action, "", True))
            continue
        label = hit_label(hit)
        if not label:
            raise DecodeError("policy hit without a name", f"$.Key.policies.enforced_policies[{i}].name")
        out.append(PolicyHit(hit.policy_index, action, label, False, _kind(hit) in KIND_STAGED))
    return out


def decode_line(line: bytes) -> FlowRecord | None:
    flow = _decode(line)
    return flow_record(flow)


def flow_record(flow: _Flow) -> FlowRecord | None:
    """The counting view of one Goldmane flow (JSON or protobuf alike)."""
    key = flow.Key
    if key is None:
        raise DecodeError("missing Key", "$.Key")
    if key.action in (0, ""):
        raise DecodeError("missing action", "$.Key.action")
    action = _enum(ACTIONS, key.action, "$.Key.action")
    if action == "pass":
        return None  # a pass is decided by a later tier: not a verdict
    family = Family.ALLOWED if action == "allow" else Family.DROPPED
    packets = unsigned(flow.packets_in, "$.packets_in") + unsigned(flow.packets_out, "$.packets_out")
    if packets <= 0:
        return None
    policies: tuple[str, ...] = ()
    if key.policies is not None and key.policies.enforced_policies:
        hit = deciding_hit(_policy_hits(key.policies.enforced_policies), action)
        if hit is not None and not hit.profile:
            policies = (hit.label,)
    source_type = ENDPOINT_TYPES.get(key.source_type) if key.source_type not in (0, "") else None
    dest_type = ENDPOINT_TYPES.get(key.dest_type) if key.dest_type not in (0, "") else None
    protocol = protocol_label(key.proto) if key.proto else ""
    return FlowRecord(
        kind=CALICO_FLOW,
        verdict=family,
        policies=policies,
        direction=REPORTERS.get(key.reporter, "unknown"),
        source=calico_peer(source_type, None, key.source_name, key.source_namespace, flow.source_labels, None),
        destination=calico_peer(dest_type, None, key.dest_name, key.dest_namespace, flow.dest_labels, None),
        destination_port=port_label(protocol, key.dest_port),
        protocol=protocol,
        reason=POLICY_DENIED if family is Family.DROPPED else "",
        packets=packets,
        time_ns=(flow.end_time or flow.start_time) * 1_000_000_000,
        port_or_type=key.dest_port,
    )


# -- protobuf (the gRPC Flows.Stream API): goldmane.FlowResult bytes ------------------------------------

_encode = msgspec.json.Encoder().encode


def _hit_from_pb(pb: Any) -> _Hit:
    return _Hit(kind=pb.kind, namespace=pb.namespace, name=pb.name, tier=pb.tier, action=pb.action,
                policy_index=pb.policy_index, rule_index=pb.rule_index,
                trigger=_hit_from_pb(pb.trigger) if pb.HasField("trigger") else None)


def flow_from_pb(pb: Any) -> _Flow:
    """The JSON decoder's view of a protobuf goldmane.Flow (labels as the JSON list they would be)."""
    k = pb.Key
    trace = _Trace([_hit_from_pb(h) for h in k.policies.enforced_policies]) if k.HasField("policies") else None
    key = _Key(source_name=k.source_name, source_namespace=k.source_namespace, source_type=k.source_type,
               dest_name=k.dest_name, dest_namespace=k.dest_namespace, dest_type=k.dest_type, dest_port=k.dest_port,
               proto=k.proto, reporter=k.reporter, action=k.action, policies=trace)
    return _Flow(Key=key if pb.HasField("Key") else None, start_time=pb.start_time, end_time=pb.end_time,
                 source_labels=msgspec.Raw(_encode(list(pb.source_labels))) if pb.source_labels else msgspec.Raw(b""),
                 dest_labels=msgspec.Raw(_encode(list(pb.dest_labels))) if pb.dest_labels else msgspec.Raw(b""),
                 packets_in=pb.packets_in, packets_out=pb.packets_out)


def decode_flow_result(data: bytes) -> FlowRecord | None:
    """One `goldmane.FlowResult` message of the Flows.Stream API (protobuf bytes)."""
    from google.protobuf.message import DecodeError as ProtobufDecodeError

    from exporter.proto import goldmane_pb2

    try:
        result: Any = goldmane_pb2.FlowResult.FromString(data)  # type: ignore[attr-defined]
    except ProtobufDecodeError as exc:
        raise DecodeError(f"not a valid goldmane.FlowResult: {exc}") from None
    if not result.HasField("flow"):
        return None
    return flow_record(flow_from_pb(result.flow))
