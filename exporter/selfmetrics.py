"""The exporter's own metrics (`netpol_exporter_*`), kept as plain attributes and rendered at scrape."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from exporter import __version__
from exporter.decoders import Decoder, get_decoder
from exporter.exposition import MetricFamily
from exporter.store import SeriesStore

_PYTHON_VERSION = sys.version.split()[0]  # what platform.python_version() reads, without importing it


@dataclass(eq=False)
class SourceStats:
    """Per-source counters, updated on the hot path by plain attribute increments."""

    name: str  # the source spec: `hubble-file:/path`, `calico-stdin`, `hubble:FILE` for `once`
    format: str
    decode: Decoder = field(init=False, repr=False)
    read: int = 0
    counted: int = 0
    ignored: int = 0
    invalid: int = 0
    lost: int = 0
    paired: int = 0
    # Lines that could have counted but lacked a field the counting rules read (a field mask too narrow).
    missing_event_type: int = 0
    missing_time: int = 0
    up: bool = True
    error: str = ""  # what stopped reading the source (once: a file that cannot be read to its end)
    last_event_time: float = 0.0  # seconds since the epoch

    def __post_init__(self) -> None:
        self.decode = get_decoder(self.format)


_COUNTERS = (
    ("events_read", "read", "Lines or messages read from the source."),
    ("events_counted", "counted", "Events that added to a flow family."),
    ("events_ignored", "ignored",
     "Well-formed events that cannot count (traces, L7, replies, non-policy drops, paired drop events, "
     "lost-events and agent lines)."),
    ("events_invalid", "invalid", "Malformed lines: not JSON, a value of the wrong type, truncated."),
    ("hubble_lost_events", "lost", "Events Hubble reported lost (sum of lost_events.num_events_lost)."),
    ("hubble_drop_events_paired", "paired",
     "Hubble drop events paired with their policy-verdict twin (counted once, through the verdict)."),
)


class SelfMetrics:
    """Sources, flow stores and extra collectors → `netpol_exporter_*` families."""

    def __init__(self, stores: Iterable[SeriesStore]) -> None:
        self.stores = list(stores)
        self.sources: dict[str, SourceStats] = {}
        self.collectors: list[Callable[[], Iterable[MetricFamily]]] = []

    def source(self, name: str, fmt: str) -> SourceStats:
        stats = self.sources.get(name)
        if stats is None:
            stats = self.sources[name] = SourceStats(name, fmt)
        return stats

    def families(self) -> Iterator[MetricFamily]:
        build = MetricFamily("netpol_exporter_build_info", "gauge", "Build information.",
                             ("version", "python_version"))
        build.set(1, __version__, _PYTHON_VERSION)
        yield build
        sources = list(self.sources.values())
        for metric, attr, help_text in _COUNTERS:
            fam = MetricFamily(f"netpol_exporter_{metric}", "counter", help_text, ("source",))
            for s in sources:
                fam.set(getattr(s, attr), s.name)
            yield fam
        missing = MetricFamily(
            "netpol_exporter_events_missing_fields", "counter",
            "Lines that could have counted but lacked a field the counting rules read (event_type, time): "
            "the exporter's field mask or a log shipper removed it.", ("source", "field"))
        for s in sources:
            if s.missing_event_type:
                missing.set(s.missing_event_type, s.name, "event_type")
            if s.missing_time:
                missing.set(s.missing_time, s.name, "time")
        yield missing
        up = MetricFamily("netpol_exporter_source_up", "gauge", "1 while the source is connected or readable.",
                          ("source",))
        last = MetricFamily("netpol_exporter_last_event_timestamp_seconds", "gauge",
                            "Time of the last event read (the event's own time when it carries one).", ("source",))
        for s in sources:
            up.set(1 if s.up else 0, s.name)
            if s.last_event_time:
                last.set(s.last_event_time, s.name)
        yield up
        yield last
        live = MetricFamily("netpol_exporter_series", "gauge", "Live series per flow family.", ("family",))
        limit = MetricFamily("netpol_exporter_series_limit", "gauge", "Cap on live series per flow family.",
                             ("family",))
        folded = MetricFamily("netpol_exporter_series_folded", "counter",
                              "Increments folded into __overflow__ series by the series cap.", ("family",))
        expired = MetricFamily("netpol_exporter_series_expired", "counter", "Idle series removed.", ("family",))
        for store in self.stores:
            family = store.name + "_total"
            live.set(len(store), family)
            limit.set(store.max_series, family)
            folded.set(store.folded, family)
            expired.set(store.expired, family)
        yield from (live, limit, folded, expired)
        for collect in self.collectors:
            yield from collect()
