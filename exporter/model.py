"""The normalized flow record every decoder produces, and the metric families of the contract."""

from __future__ import annotations

import enum
from typing import Final

import msgspec


class Family(enum.IntEnum):
    """The three contract families; the value indexes per-family tables."""

    DROPPED = 0
    ALLOWED = 1
    AUDIT = 2


FAMILY_NAMES: Final = {
    Family.DROPPED: "networkpolicy_dropped_packets",
    Family.ALLOWED: "networkpolicy_allowed_packets",
    Family.AUDIT: "networkpolicy_audit_packets",
}

FAMILY_HELP: Final = {
    Family.DROPPED: "Packets denied by a network policy (Hubble: per denied packet; Calico: packets_in+packets_out).",
    Family.ALLOWED: (
        "Packets allowed by a network policy (Hubble: one per new connection per enforcing side; "
        "Calico: packets_in+packets_out)."
    ),
    Family.AUDIT: "Packets a policy in audit or staged mode would have denied.",
}

# Label order is fixed: `policy` first (the cardinality limit folds per policy), `reason` last.
FLOW_LABELS: Final = (
    "policy",
    "direction",
    "source",
    "source_namespace",
    "destination",
    "destination_namespace",
    "destination_port",
    "protocol",
)
FAMILY_LABELS: Final = {
    Family.DROPPED: (*FLOW_LABELS, "reason"),
    Family.ALLOWED: FLOW_LABELS,
    Family.AUDIT: (*FLOW_LABELS, "reason"),
}

# Event kinds a decoder reports; the counting rules (exporter.counting) decide what each adds.
HUBBLE_VERDICT: Final = 5  # event_type.type of a policy-verdict event
HUBBLE_DROP: Final = 1  # event_type.type of a drop event
HUBBLE_L7: Final = 129  # event_type.type of an L7 record: counts when an L7 policy denied the request
# A DROPPED flow without `event_type` (an exporter field mask dropped it): a verdict or its drop twin.
HUBBLE_UNTYPED_DROP: Final = -2
CALICO_FLOW: Final = -1  # a Calico flow-log record or Goldmane flow: carries its own packet count


class Peer(msgspec.Struct, frozen=True, gc=False):
    """One side of a flow, already named per the contract (`ns/workload`, `world`, ...)."""

    name: str
    namespace: str = ""
    ip: str = ""
    # Set when the name came from a heuristic (pod-name pattern, labels) and enrichment may improve it.
    pod: str = ""
    labels: tuple[str, ...] = ()


class FlowRecord(msgspec.Struct, gc=False):
    """A normalized flow event.

    `policies` holds contract-formatted policy names (may be empty: the counting rules supply the
    sentinel). `verdict` is the family the event reports; for Hubble drop events it is DROPPED.
    Fields after `packets` exist for Hubble's drop/verdict pairing and for the denied-flows view.
    """

    kind: int  # HUBBLE_VERDICT, HUBBLE_DROP or CALICO_FLOW
    verdict: Family
    policies: tuple[str, ...]
    direction: str
    source: Peer
    destination: Peer
    destination_port: str
    protocol: str
    reason: str
    packets: int = 1
    # Event time: to the nanosecond for drops and audits (pairing, the denied-flows view); allowed
    # Hubble events keep their whole second (nothing pairs with them, parsing less is faster).
    time_ns: int = 0
    node: str = ""
    source_port: int = 0
    # ICMP type for ICMP flows, else the destination port as a number (pairing key).
    port_or_type: int = 0
    # Hubble `policy_match_type` (0: no rule matched, the endpoint is not isolated in that direction).
    match_type: int = 0
    # Hubble exporter aggregation: this line stands for `packets` events of its kind (count-wise pairing).
    aggregated: bool = False


class LostEvents(msgspec.Struct, frozen=True, gc=False):
    """Hubble `lost_events`: events the agent or relay dropped before we saw them."""

    count: int
    source: str = ""


class MissingEventType(msgspec.Struct, frozen=True, gc=False):
    """A Hubble flow without `event_type` that cannot be told from a trace: ignored, and reported in
    `netpol_exporter_events_missing_fields_total{field="event_type"}`."""


MISSING_EVENT_TYPE: Final = MissingEventType()


class DecodeError(ValueError):
    """A malformed input line; `field` names the offending JSON path when known."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg} (at {self.field})" if self.field else msg
