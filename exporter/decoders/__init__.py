"""Decoders: plain functions from one input line (bytes) to a normalized record.

Each returns a FlowRecord (something the counting rules may count), a LostEvents, a MissingEventType
(a flow a field mask left without `event_type`), or None for an
event that cannot count (traces, L7, agent events ...), and raises DecodeError on malformed input.
"""

from __future__ import annotations

from collections.abc import Callable

from exporter.model import FlowRecord, LostEvents, MissingEventType

Decoded = FlowRecord | LostEvents | MissingEventType | None
Decoder = Callable[[bytes], Decoded]


def get_decoder(fmt: str) -> Decoder:
    """The decoder for an input format name (`hubble`, `calico`, `goldmane`, `hubble-pb`, `goldmane-pb`)."""
    if fmt == "hubble":
        from exporter.decoders.hubble import decode_line

        return decode_line
    if fmt == "calico":
        from exporter.decoders.calico import decode_line as decode_calico

        return decode_calico
    if fmt == "goldmane":
        from exporter.decoders.goldmane import decode_line as decode_goldmane

        return decode_goldmane
    if fmt == "goldmane-pb":
        from exporter.decoders.goldmane import decode_flow_result

        return decode_flow_result
    if fmt == "hubble-pb":
        from exporter.decoders.hubble_pb import decode_message

        return decode_message
    raise ValueError(f"unknown input format {fmt!r} (expected hubble, calico, goldmane or hubble-pb)")


FORMATS = ("hubble", "calico", "goldmane", "hubble-pb", "goldmane-pb")
