"""Property: no input line makes a decoder raise anything but DecodeError."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.decoders.calico import decode_line as decode_calico
from exporter.decoders.goldmane import decode_line as decode_goldmane
from exporter.decoders.hubble import decode_line as decode_hubble
from exporter.model import DecodeError
from tests.core.flows import calico_line, hubble_line
from tests.sources.goldmane_flows import DENIED_BY_END_OF_TIER

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
HUBBLE_KEYS = ["flow", "time", "verdict", "drop_reason", "drop_reason_desc", "IP", "l4", "source", "destination",
               "node_name", "event_type", "traffic_direction", "is_reply", "ingress_allowed_by", "egress_denied_by",
               "lost_events", "agent_event", "TCP", "ICMPv4", "type", "sub_type", "num_events_lost", "labels",
               "workloads", "name", "namespace", "pod_name", "identity"]
GOLDMANE_KEYS = ["Key", "source_name", "source_type", "dest_port", "proto", "reporter", "action", "policies",
                 "enforced_policies", "kind", "trigger", "tier", "name", "rule_index", "packets_in", "packets_out",
                 "start_time", "source_labels"]
CALICO_KEYS = ["action", "packets_in", "packets_out", "policies", "enforced_policies", "all_policies", "proto",
               "dest_port", "source_type", "source_name_aggr", "source_labels", "reporter", "end_time"]


def _decode_ok(decode: Any, line: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(line)


def _mutate(base: bytes, keys: list[str], data: st.DataObject) -> bytes:
    obj = json.loads(base)
    target = obj.get("flow", obj)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.sampled_from([obj, target]))
        where[data.draw(st.sampled_from(keys))] = data.draw(json_values)
    return json.dumps(obj).encode()


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(line: bytes) -> None:
    _decode_ok(decode_hubble, line)
    _decode_ok(decode_calico, line)
    _decode_ok(decode_goldmane, line)


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_mutated_hubble_lines(data: st.DataObject) -> None:
    base = hubble_line(event_type=data.draw(st.sampled_from([1, 5])), verdict="DROPPED", reason="POLICY_DENIED")
    line = _mutate(base, HUBBLE_KEYS, data)
    _decode_ok(decode_hubble, line)
    cut = data.draw(st.integers(0, len(line)))
    _decode_ok(decode_hubble, line[:cut])


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_mutated_calico_lines(data: st.DataObject) -> None:
    line = _mutate(calico_line(), CALICO_KEYS, data)
    _decode_ok(decode_calico, line)
    _decode_ok(decode_calico, line[: data.draw(st.integers(0, len(line)))])


def _mutate_nested(obj: Any, keys: list[str], data: st.DataObject) -> None:
    """Set a random known key at a random depth of the object to a random JSON value."""
    node = obj
    while isinstance(node, dict) and node and data.draw(st.booleans()):
        child = node[data.draw(st.sampled_from(sorted(node)))]
        if isinstance(child, list) and child and isinstance(child[0], dict):
            child = child[0]
        if not isinstance(child, dict):
            break
        node = child
    if isinstance(node, dict):
        node[data.draw(st.sampled_from(keys))] = data.draw(json_values)


@settings(max_examples=600, deadline=None)
@given(st.data())
def test_mutated_goldmane_lines(data: st.DataObject) -> None:
    obj = json.loads(DENIED_BY_END_OF_TIER)
    for _ in range(data.draw(st.integers(1, 4))):
        _mutate_nested(obj, GOLDMANE_KEYS, data)
    line = json.dumps(obj).encode()
    _decode_ok(decode_goldmane, line)
    _decode_ok(decode_goldmane, line[: data.draw(st.integers(0, len(line)))])
