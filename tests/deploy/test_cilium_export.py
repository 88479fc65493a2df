"""deploy/cilium: the Hubble exporter's allowList and fieldMask keep everything the exporter counts.

The filters are applied here with Cilium's FlowFilter semantics (filters OR-ed; within one, fields AND-ed
and values OR-ed; event_type `{type, match_sub_type, sub_type}`) and the field mask with fieldMask's
(named fields kept whole, nested names with dots). Counting the filtered, masked stream must give the
counters of the full stream.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import yaml

from exporter.decoders.hubble import _Flow
from exporter.pipeline import Pipeline
from tests.core.flows import hubble_line

REPO = Path(__file__).resolve().parents[2]
STATIC = yaml.safe_load((REPO / "deploy/cilium/hubble-export-values.yaml").read_text())["hubble"]["export"]
DYNAMIC = yaml.safe_load((REPO / "deploy/cilium/hubble-export-dynamic-values.yaml").read_text())["hubble"]["export"]
ALLOW = [json.loads(f) for f in STATIC["static"]["allowList"]]
MASK = STATIC["static"]["fieldMask"]
# Read only when the agent aggregates (Cilium 1.18+); older agents reject the name in a field mask.
ONLY_WITH_AGGREGATION = {"aggregate"}


def test_static_and_dynamic_values_agree() -> None:
    (flowlog,) = DYNAMIC["dynamic"]["config"]["content"]
    assert flowlog["filePath"] == STATIC["static"]["filePath"] == "/var/run/cilium/hubble/events.log"
    assert flowlog["includeFilters"] == ALLOW
    assert flowlog["fieldMask"] == MASK
    assert not flowlog["excludeFilters"] and not STATIC["static"]["denyList"]


def test_field_mask_keeps_every_field_the_decoder_reads() -> None:
    read = {f.encode_name for f in msgspec.structs.fields(_Flow)}
    assert read - ONLY_WITH_AGGREGATION <= {path.split(".")[0] for path in MASK if "." not in path}


def _passes(flow: dict[str, Any]) -> bool:
    event = flow.get("event_type", {})
    for flt in ALLOW:
        assert flt.keys() <= {"event_type", "verdict"}, flt
        types = flt.get("event_type", [])
        if types and not any(event.get("type", 0) == t["type"] and
                             (not t.get("match_sub_type") or event.get("sub_type", 0) == t["sub_type"]) for t in types):
            continue
        if flt.get("verdict") and flow.get("verdict") not in flt["verdict"]:
            continue
        return True
    return False


def _mask(flow: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in flow.items() if key in MASK}


def _sub_type(line: bytes, reason: int) -> bytes:
    """A drop event's sub_type is its drop reason (the builder writes 133)."""
    return line.replace(b'"sub_type":133', b'"sub_type":%d' % reason)


def _stream() -> list[bytes]:
    lines = []
    for i in range(40):
        t = f"2024-05-01T10:00:{i:02d}.000000000Z"
        t2 = f"2024-05-01T10:00:{i:02d}.001000000Z"
        port = {"TCP": {"source_port": 41000 + i, "destination_port": 7235}}
        lines += [
            hubble_line(event_type=4, verdict="FORWARDED", time=t, l4=port, trace_observation_point="TO_ENDPOINT"),
            hubble_line(verdict="FORWARDED", time=t, l4=port,
                        ingress_allowed_by=[{"name": "allow-web", "namespace": "temporal"}]),
            hubble_line(verdict="AUDIT", time=t, l4=port),
            hubble_line(verdict="DROPPED", reason="POLICY_DENIED", time=t, l4=port),
            hubble_line(event_type=1, verdict="DROPPED", reason="POLICY_DENIED", time=t2, l4=port),
            _sub_type(hubble_line(event_type=1, verdict="DROPPED", reason="POLICY_DENY", time=t2, direction="EGRESS",
                                  l4=port), 181),
            _sub_type(hubble_line(event_type=1, verdict="DROPPED", reason="CT_MAP_INSERTION_FAILED", time=t2,
                                  l4=port, drop_reason=155), 155),
            hubble_line(event_type=129, verdict="DROPPED", time=t, l4=port),
            hubble_line(event_type=129, verdict="FORWARDED", time=t, l4=port),
            hubble_line(verdict="FORWARDED", time=t, l4=port, is_reply=True),
        ]
    return lines


def _counts(lines: list[bytes]) -> dict[str, dict[tuple[str, ...], float]]:
    pipeline = Pipeline()
    pipeline.ingest(pipeline.source("test", "hubble"), lines)
    return {store.name: {key: entry[0] for key, entry in store.series.items()} for store in pipeline.stores.values()}


def test_filtered_masked_stream_counts_the_same() -> None:
    full = _stream()
    kept = []
    for line in full:
        obj = json.loads(line)
        if _passes(obj["flow"]):
            kept.append(json.dumps({**obj, "flow": _mask(obj["flow"])}).encode())
    assert 0 < len(kept) < len(full) * 0.8  # traces, non-policy drops, allowed L7 records gone
    assert not any(b'"type":4' in line or b"CT_MAP" in line for line in kept)
    counts = _counts(full)
    assert sum(sum(series.values()) for series in counts.values()) > 0
    assert _counts(kept) == counts
