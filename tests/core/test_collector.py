from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collector import FlowCollector
from exporter.pipeline import Pipeline
from tests.core.flows import calico_line, hubble_line


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_collector_matches_the_renderer() -> None:
    pipeline = Pipeline()
    pipeline.ingest(pipeline.source("c", "calico"), [calico_line(), calico_line(action="allow", policies=None)])
    pipeline.ingest(pipeline.source("h", "hubble"), [hubble_line(verdict="FORWARDED")])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlowCollector(pipeline.stores.values(), pipeline.self_metrics.families))
    ours = _samples(pipeline.render().decode())
    theirs = _samples(generate_latest(registry).decode())
    assert not any(name.endswith("_created") for name, _ in theirs)
    assert theirs == ours
    assert _samples(generate_latest(registry).decode()) == ours  # collected again: same
    assert sum(v for (n, _), v in ours.items() if n == "networkpolicy_dropped_packets_total") == 5
