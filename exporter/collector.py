"""The flow stores as a prometheus_client custom collector (client_python's collector pattern).

The exporter's own /metrics uses the faster renderer in exporter.exposition; this collector lets the
same counts be registered in any prometheus_client registry (an embedding application, the
multiprocess or push tooling) with no per-event `Counter.labels().inc()` and no `_created` series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.exposition import MetricFamily
from exporter.store import SeriesStore


class FlowCollector(Collector):
    def __init__(self, stores: Iterable[SeriesStore],
                 families: Callable[[], Iterable[MetricFamily]] | None = None) -> None:
        """`families` is called at each collection (e.g. `pipeline.self_metrics.families`)."""
        self.stores = list(stores)
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for store in self.stores:
            counter = CounterMetricFamily(store.name, store.help, labels=store.label_names)
            for key, entry in list(store.series.items()):
                counter.add_metric(key, entry[0])
            yield counter
        for family in self.families() if self.families else ():
            kind = CounterMetricFamily if family.type == "counter" else GaugeMetricFamily
            metric = kind(family.name, family.help, labels=family.label_names)
            for labels, value in list(family.samples.items()):
                metric.add_metric(labels, value)
            yield metric
