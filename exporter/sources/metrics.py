"""Self-metrics the sources add (`netpol_exporter_source_*`, checkpoint and push counters).

One collector per Pipeline, registered on first use in `pipeline.self_metrics.collectors`, so each
family is rendered once however many sources feed it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from exporter.exposition import MetricFamily
from exporter.pipeline import Pipeline


@dataclass
class SourceMetrics:
    backlog_bytes: dict[str, float] = field(default_factory=dict)
    checkpoint_errors: dict[str, int] = field(default_factory=dict)
    reconnects: dict[str, int] = field(default_factory=dict)
    file_reopens: dict[tuple[str, str], int] = field(default_factory=dict)
    push_requests: dict[tuple[str, str], int] = field(default_factory=dict)
    bytes_lost: dict[str, int] = field(default_factory=dict)

    def inc(self, table: dict[Any, int], key: Any, by: int = 1) -> None:
        table[key] = table.get(key, 0) + by

    def families(self) -> Iterator[MetricFamily]:
        backlog = MetricFamily("netpol_exporter_source_backlog_bytes", "gauge",
                               "Bytes written to the source but not read yet (file sources).", ("source",))
        for name, value in self.backlog_bytes.items():
            backlog.set(value, name)
        yield backlog
        errors = MetricFamily("netpol_exporter_checkpoint_errors", "counter",
                              "Failed writes of a source's read position to the state dir.", ("source",))
        for name, count in self.checkpoint_errors.items():
            errors.set(count, name)
        yield errors
        reconnects = MetricFamily("netpol_exporter_source_reconnects", "counter",
                                  "Times a streaming source lost or failed its connection and retried.",
                                  ("source",))
        for name, count in self.reconnects.items():
            reconnects.set(count, name)
        yield reconnects
        reopens = MetricFamily("netpol_exporter_source_file_reopens", "counter",
                               "Times a followed file was reopened (rotated, truncated, deleted, recreated).",
                               ("source", "reason"))
        for (name, reason), count in self.file_reopens.items():
            reopens.set(count, name, reason)
        yield reopens
        lost = MetricFamily("netpol_exporter_source_bytes_lost", "counter",
                            "Bytes of a followed file that were gone before they could be read (the file of the "
                            "checkpoint deleted while the exporter was down); a lower bound.", ("source",))
        for name, count in self.bytes_lost.items():
            lost.set(count, name)
        yield lost
        pushes = MetricFamily("netpol_exporter_push_requests", "counter",
                              "POST requests to a push receiver, by HTTP status code.", ("source", "code"))
        for (name, code), count in self.push_requests.items():
            pushes.set(count, name, code)
        yield pushes


_BY_PIPELINE: weakref.WeakKeyDictionary[Pipeline, SourceMetrics] = weakref.WeakKeyDictionary()


def source_metrics(pipeline: Pipeline) -> SourceMetrics:
    metrics = _BY_PIPELINE.get(pipeline)
    if metrics is None:
        metrics = _BY_PIPELINE[pipeline] = SourceMetrics()
        pipeline.self_metrics.collectors.append(metrics.families)
    return metrics
