"""Connection events: what every format's lines are decoded into (exporter.whatif.hubble_events,
exporter.whatif.calico_events).

A Hubble event is any flow with addresses and an L4 header (trace events and policy verdicts
alike); a Calico flows.log record or Goldmane flow is an aggregate that carries its own count of
started connections. Lines that say nothing about a connection give None; malformed lines raise
DecodeError naming the field.
"""

from __future__ import annotations

from typing import NamedTuple

from exporter.naming import PORT_PROTOCOLS
from exporter.whatif.sides import Side

ALLOWED = "allowed"
DENIED = "denied"
EGRESS = "egress"
INGRESS = "ingress"
# ICMP reply type → its request's type, to recognise replies when `is_reply` is absent.
_ICMP_REQUEST = {("ICMPv4", 0): 8, ("ICMPv4", 14): 13, ("ICMPv6", 129): 128}

FiveTuple = tuple[str, int, str, int, str]


class Event(NamedTuple):
    """One observation of a connection (Hubble) or an aggregate of connections (Calico, Goldmane)."""

    src: Side
    dst: Side
    protocol: str  # contract value: TCP, UDP, SCTP, ICMPv4, ICMPv6
    port: int | None  # destination port for TCP/UDP/SCTP, None otherwise
    time_ns: int  # 0: the line has no time
    verdict: str  # ALLOWED or DENIED, as recorded
    side: str  # where it was denied (EGRESS/INGRESS) when known, else ""
    # Hubble only
    five_tuple: FiveTuple | None = None
    is_reply: bool | None = None
    # Calico/Goldmane only: connections started in the record, and which end reported it
    started: int = 1
    reporter: str = ""  # "src" | "dst"
    end_ns: int = 0


_NOBODY = Side("", "", None, None, "")
# A reply, whose line is not decoded further (exporter.whatif.hubble_events): it never counts.
REPLY = Event(_NOBODY, _NOBODY, "", None, 0, ALLOWED, "", is_reply=True)


class Touch(NamedTuple):
    """Another event of a connection already being tracked: only its time matters."""

    five_tuple: FiveTuple
    time_ns: int


def reverse_of(five: FiveTuple) -> FiveTuple:
    """The 5-tuple of the packet this one would answer (ICMP: the request type of a reply type)."""
    src, sport, dst, dport, protocol = five
    if protocol in PORT_PROTOCOLS:
        return (dst, dport, src, sport, protocol)
    return (dst, 0, src, _ICMP_REQUEST.get((protocol, dport), dport), protocol)


# A Touch the decoder has applied to the tracker itself (one stream: nothing comes between decoding a line
# and adding its event).
TOUCHED = Touch(("", 0, "", 0, ""), 0)
