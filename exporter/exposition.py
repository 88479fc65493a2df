"""Prometheus text 0.0.4 and OpenMetrics 1.0 rendering of the flow stores and other families."""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from exporter.store import SeriesStore, escape_label_value

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass
class MetricFamily:
    """A small family (self-metrics, info metrics): samples keyed by label-value tuples."""

    name: str  # without `_total` for counters
    type: str  # "counter" | "gauge"
    help: str
    label_names: Sequence[str] = ()
    samples: dict[tuple[str, ...], float] = field(default_factory=dict)

    def set(self, value: float, *labels: str) -> None:
        self.samples[labels] = value


INT_EXACT = 1 << 63  # integers below this render digit for digit; beyond, as a float Prometheus can parse


def _number(value: float) -> str:
    """A sample value Prometheus always parses: an integer beyond float range is `+Inf`/`-Inf`."""
    if isinstance(value, int):
        if -INT_EXACT < value < INT_EXACT:
            return str(int(value))  # int(): a bool renders 1/0
        try:
            value = float(value)
        except OverflowError:
            return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _header(out: list[str], name: str, type_: str, help_text: str, openmetrics: bool) -> str:
    """Write HELP/TYPE lines; returns the sample name."""
    help_text = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    sample = f"{name}_total" if type_ == "counter" else name
    meta = name if openmetrics else sample
    out.append(f"# HELP {meta} {help_text}\n# TYPE {meta} {type_}\n")
    return sample


CHUNK_SERIES = 2000  # series per chunk: memory stays bounded however many series there are


def _store_chunks(store: SeriesStore, openmetrics: bool, chunk_series: int) -> Iterator[str]:
    head: list[str] = []
    prefix = _header(head, store.name, "counter", store.help, openmetrics) + "{"
    yield head[0]
    series = store.series
    keys = list(series)  # a snapshot of the keys only: one C call, no per-series objects
    for start in range(0, len(keys), chunk_series):
        out = []
        for key in keys[start:start + chunk_series]:
            entry = series.get(key)
            if entry is not None:  # None: expired since the snapshot
                out.append(f"{prefix}{store.labels_text(key)}}} {_number(entry[0])}\n")
        yield "".join(out)


def render_family(out: list[str], family: MetricFamily, openmetrics: bool) -> None:
    sample = _header(out, family.name, family.type, family.help, openmetrics)
    names = family.label_names
    for labels, value in list(family.samples.items()):
        if names:
            text = ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, labels, strict=True))
            out.append(f"{sample}{{{text}}} {_number(value)}\n")
        else:
            out.append(f"{sample} {_number(value)}\n")


def iter_render_text(
    stores: Iterable[SeriesStore], families: Iterable[MetricFamily], *, openmetrics: bool = False,
    chunk_series: int = CHUNK_SERIES,
) -> Iterator[str]:
    """The exposition in pieces of at most `chunk_series` samples: a server streams them (and may yield
    to its event loop between them); peak memory stays small at any number of series."""
    for store in stores:
        yield from _store_chunks(store, openmetrics, chunk_series)
    out: list[str] = []
    for family in families:
        render_family(out, family, openmetrics)
    if openmetrics:
        out.append("# EOF\n")
    yield "".join(out)


def iter_render(
    stores: Iterable[SeriesStore], families: Iterable[MetricFamily], *, openmetrics: bool = False
) -> Iterator[bytes]:
    return (text.encode() for text in iter_render_text(stores, families, openmetrics=openmetrics))


def render(
    stores: Iterable[SeriesStore], families: Iterable[MetricFamily], *, openmetrics: bool = False
) -> bytes:
    return b"".join(iter_render(stores, families, openmetrics=openmetrics))


class GzipStream:
    """Incremental gzip of a chunk stream (level 1, like maybe_gzip), for streamed responses."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(1, zlib.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def finish(self) -> bytes:
        return self._z.flush()


def negotiate(accept: str | None) -> tuple[bool, str]:
    """(openmetrics?, content type) for an Accept header, as Prometheus negotiates."""
    if accept and "application/openmetrics-text" in accept:
        return True, OPENMETRICS_CONTENT_TYPE
    return False, TEXT_CONTENT_TYPE


def maybe_gzip(body: bytes, accept_encoding: str | None) -> tuple[bytes, str | None]:
    if accept_encoding and "gzip" in accept_encoding:
        return gzip.compress(body, compresslevel=1), "gzip"
    return body, None
