"""Incremental /metrics rendering: a scrape never holds the event loop for long.

Rendering 100k series takes ~0.5-1 s of CPU. Done in one go on the event loop it would stall every
source for that long; done in a worker thread it competes for the GIL (and on a busy node the loop
thread waits for it far longer than the 5 ms switch interval). So the exposition is produced on the
event loop in chunks of CHUNK_SERIES series, streamed to the client (gzip-compressed incrementally when
asked), yielding to the loop between chunks: the longest stall is one chunk (about 500 series, a few ms).

The output is byte-for-byte what `Pipeline.render()` produces for the same state (tested).
"""

from __future__ import annotations

import gc
import zlib
from collections.abc import Iterator

from exporter.exposition import MetricFamily, render_family
from exporter.exposition import _number as format_number  # the exposition's own value format
from exporter.pipeline import Pipeline

CHUNK_SERIES = 500


def render_chunks(pipeline: Pipeline, openmetrics: bool, chunk_series: int = CHUNK_SERIES) -> Iterator[str]:
    """The exposition in pieces of at most `chunk_series` samples each (the caller yields between them)."""
    for store in pipeline.stores.values():
        out: list[str] = []
        render_family(out, MetricFamily(store.name, "counter", store.help), openmetrics)  # header only
        prefix = store.name + "_total{"
        series = store.series
        keys = list(series)  # a snapshot of the keys only: one C call, no per-series objects
        for start in range(0, len(keys), chunk_series):
            for key in keys[start:start + chunk_series]:
                entry = series.get(key)
                if entry is not None:  # None: expired since the snapshot
                    out.append(f"{prefix}{store.labels_text(key)}}} {format_number(entry[0])}\n")
            yield "".join(out)
            out = []
        if out:
            yield "".join(out)
    out = []
    for family in pipeline.self_metrics.families():
        render_family(out, family, openmetrics)
    if openmetrics:
        out.append("# EOF\n")
    yield "".join(out)


class GzipStream:
    """Incremental gzip (level 1, like the exposition's maybe_gzip)."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(1, zlib.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def finish(self) -> bytes:
        return self._z.flush()


class GCPause:
    """Pauses the cyclic GC while scrapes run (nested-safe).

    A scrape's snapshot holds ~2 temporary objects per series for the whole scrape; with the collector
    running they would be promoted and trigger full collections (hundreds of ms at 100k series, on the
    event loop). Paused, they die by reference counting and no collection ever sees them.
    """

    def __init__(self) -> None:
        self._depth = 0
        self._was_enabled = True

    def __enter__(self) -> None:
        if self._depth == 0:
            self._was_enabled = gc.isenabled()
            gc.disable()
        self._depth += 1

    def __exit__(self, *_exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._was_enabled:
            gc.enable()
