"""Property: no line and no sequence of lines stops the exporter.

Arbitrary sequences of Hubble, Calico and Goldmane lines — real shapes with every field optional and of
any type, any order, any node, any time or none, aggregated or not, mixed with undecodable bytes, invalid
UTF-8 and absurd nesting — go through the whole Pipeline (decode → count → store → render) in arbitrary
batches. It never raises, the exposition always parses, and per source: read = counted + ignored + invalid.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Config
from exporter.pipeline import Pipeline
from tests.core.flows import calico_line, hubble_line
from tests.sources.goldmane_flows import DENIED_BY_END_OF_TIER

WORDS = ["DROPPED", "FORWARDED", "AUDIT", "INGRESS", "EGRESS", "-", "1e308"]
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
           | st.text(max_size=12) | st.sampled_from(WORDS))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)


def rfc3339(seconds: int, nanos: int = 0, digits: int = 0) -> str:
    fraction = f".{nanos:09d}"[:digits + 1] if digits else ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + fraction + "Z"


times = st.one_of(
    st.none(),
    st.integers(0, 4_000_000_000).map(rfc3339),
    st.builds(rfc3339, st.integers(1_700_000_000, 1_700_000_100), st.integers(0, 999_999_999), st.integers(0, 9)),
    json_values,
)
nodes = st.sampled_from(["", "n1", "n2", "prod/worker-1"]) | st.text(max_size=6)
event_types = st.none() | st.sampled_from([1, 4, 5, 129, 0]).map(lambda t: {"type": t, "sub_type": 133}) | json_values
aggregates = st.none() | st.fixed_dictionaries({}, optional={
    "ingress_flow_count": st.integers(-5, 2**65) | st.text(max_size=4),
    "egress_flow_count": st.integers(0, 10),
    "unknown_direction_flow_count": st.integers(0, 10)}) | json_values
HUBBLE_FIELDS = ["verdict", "drop_reason", "drop_reason_desc", "IP", "l4", "source", "destination", "Type",
                 "traffic_direction", "is_reply", "policy_match_type", "ingress_denied_by", "egress_allowed_by",
                 "ingress_allowed_by", "Summary"]


@st.composite
def hubble_lines(draw: st.DrawFn) -> bytes:
    obj = json.loads(hubble_line(
        event_type=draw(st.sampled_from([1, 5, 129])),
        verdict=draw(st.sampled_from(["DROPPED", "FORWARDED", "AUDIT", "REDIRECTED"])),
        reason=draw(st.sampled_from([None, "POLICY_DENIED", "POLICY_DENY", "CT_NO_MAP_FOUND"])),
        direction=draw(st.sampled_from(["INGRESS", "EGRESS", "TRAFFIC_DIRECTION_UNKNOWN"]))))
    flow = obj["flow"]
    for name in draw(st.lists(st.sampled_from(HUBBLE_FIELDS), max_size=4)):
        if draw(st.booleans()):
            flow.pop(name, None)
        else:
            flow[name] = draw(json_values)
    for where, name in ((flow, "time"), (obj, "time")):
        value = draw(times)
        if value is None:
            where.pop(name, None)
        else:
            where[name] = value
    flow["node_name"] = obj["node_name"] = draw(nodes)
    event_type = draw(event_types)
    if event_type is None:
        flow.pop("event_type", None)
    else:
        flow["event_type"] = event_type
    aggregate = draw(aggregates)
    if aggregate is not None:
        flow["aggregate"] = aggregate
    if draw(st.booleans()):
        obj = flow  # the bare legacy flow object
    return json.dumps(obj).encode()


def mutated(base: bytes, keys: list[str]) -> st.SearchStrategy[bytes]:
    def apply(changes: list[tuple[str, Any]]) -> bytes:
        obj = json.loads(base)
        for key, value in changes:
            obj[key] = value
        return json.dumps(obj).encode()
    return st.lists(st.tuples(st.sampled_from(keys), json_values), max_size=4).map(apply)


hostile = st.one_of(
    st.binary(max_size=200),
    st.integers(1, 60_000).map(lambda depth: b'{"flow":' + b"[" * depth + b"]" * depth + b"}"),
    st.integers(1, 60_000).map(lambda depth: b'{"flow":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"),
    st.just(hubble_line(event_type=5, verdict="DROPPED", reason="POLICY_DENIED").replace(b"test-client", b"\xff\xfe")),
    st.just(b'{"lost_events":{"num_events_lost":"1e308"}}'),
    st.just(b'{"lost_events":{"num_events_lost":-4}}'),
    st.just(b'{"lost_events":{"num_events_lost":"18446744073709551616"}}'),
)
CALICO_KEYS = ["action", "reporter", "packets_in", "packets_out", "policies", "proto", "dest_port", "source_type",
               "source_name_aggr", "dest_labels", "end_time", "start_time"]
GOLDMANE_KEYS = ["Key", "packets_in", "packets_out", "start_time", "end_time", "source_labels"]
calico = st.one_of(mutated(calico_line(), CALICO_KEYS), mutated(calico_line(reporter="fwd", policies={
    "transit_policies": ["0|t|t.p|deny|0"]}), CALICO_KEYS), hostile)
goldmane = st.one_of(mutated(DENIED_BY_END_OF_TIER, GOLDMANE_KEYS), hostile)
hubble = st.one_of(hubble_lines(), hubble_lines(), hostile)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(st.sampled_from(["hubble", "calico", "goldmane"]), st.data()), max_size=12),
       st.integers(1, 5))
def test_no_sequence_of_lines_stops_the_pipeline(steps: list[tuple[str, st.DataObject]], batch: int) -> None:
    pipeline = Pipeline(Config.model_validate({"series": {"max_per_family": 50}}), on_invalid=lambda *a: None)
    strategies = {"hubble": hubble, "calico": calico, "goldmane": goldmane}
    for fmt, data in steps:
        lines = data.draw(st.lists(strategies[fmt], min_size=1, max_size=batch * 3))
        stats = pipeline.source(f"{fmt}:test", fmt)
        for start in range(0, len(lines), batch):
            pipeline.ingest(stats, lines[start:start + batch])
    for openmetrics in (False, True):
        text = pipeline.render(openmetrics=openmetrics).decode()
        if not openmetrics:
            for family in text_string_to_metric_families(text):  # parses, every value a finite number
                assert all(sample.value == sample.value and abs(sample.value) != float("inf")
                           for sample in family.samples), family
    for stats in pipeline.self_metrics.sources.values():
        assert stats.read == stats.counted + stats.ignored + stats.invalid, stats
