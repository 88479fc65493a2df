"""Decode → count → store: the synchronous, batched hot path every source feeds."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from exporter.config import Config
from exporter.counting import FlowCounter
from exporter.decoders import Decoded
from exporter.exposition import iter_render, render
from exporter.model import (
    FAMILY_HELP,
    FAMILY_LABELS,
    FAMILY_NAMES,
    HUBBLE_DROP,
    HUBBLE_UNTYPED_DROP,
    HUBBLE_VERDICT,
    DecodeError,
    Family,
    FlowRecord,
    LostEvents,
)
from exporter.selfmetrics import SelfMetrics, SourceStats
from exporter.store import SeriesStore

log = logging.getLogger("netpol_exporter.pipeline")

# Record kinds whose counting rules read the time (pairing).
_PAIRING_KINDS = frozenset({HUBBLE_VERDICT, HUBBLE_DROP, HUBBLE_UNTYPED_DROP})
# How many invalid lines per source are reported one by one before only counting them.
INVALID_REPORT_LIMIT = 5


class DeniedFlow(NamedTuple):
    """One entry of the recent denied flows ring (landing page, /api/v1/denied-flows)."""

    time: float
    source_name: str  # the input source spec
    source: str
    destination: str
    destination_port: str
    protocol: str
    policy: str
    reason: str
    direction: str
    packets: int


InvalidHook = Callable[[SourceStats, str, int, DecodeError], None]


def _line_error(exc: Exception) -> DecodeError:
    """What a line's decoding raised, as the DecodeError that reports it."""
    if isinstance(exc, DecodeError):
        return exc
    if isinstance(exc, RecursionError):
        return DecodeError("nested too deeply to decode")
    return DecodeError(f"{type(exc).__name__}: {exc}")


class Pipeline:
    def __init__(self, config: Config | None = None, *, on_invalid: InvalidHook | None = None) -> None:
        self.config = config or Config()
        cfg = self.config
        self.stores: dict[Family, SeriesStore] = {
            family: SeriesStore(
                FAMILY_NAMES[family],
                FAMILY_HELP[family],
                FAMILY_LABELS[family],
                max_series=cfg.series.max_per_family,
                max_overflow_series=cfg.series.max_overflow_series,
                disabled=cfg.labels.disabled,
            )
            for family in Family
        }
        self.self_metrics = SelfMetrics(self.stores.values())
        self.recent_denied: deque[DeniedFlow] = deque(maxlen=cfg.recent_denied_flows)
        self.counter = FlowCounter(
            self.stores,
            pairing_window_ns=int(cfg.hubble.pairing_window_ms * 1_000_000),
            aggregation_interval_ns=int(cfg.hubble.aggregation_interval_seconds * 1_000_000_000),
            on_denied=self._remember_denied if cfg.recent_denied_flows else None,
        )
        self.on_invalid = on_invalid or self._log_invalid
        self._reported: dict[str, int] = {}

    def source(self, name: str, fmt: str) -> SourceStats:
        """Register (or get) a source's stats; `fmt` selects its decoder."""
        return self.self_metrics.source(name, fmt)

    def ingest(self, stats: SourceStats, lines: Iterable[bytes], first_line: int = 1, where: str = "") -> None:
        """Decode and count a batch of lines from one source. Never raises for bad input: whatever a
        line's decoding raises makes that line invalid, and the lines after it still count."""
        self._tally(stats, *self._decode_all(stats, lines, first_line, where))

    def _decode_all(self, stats: SourceStats, lines: Iterable[bytes], first_line: int,
                    where: str) -> tuple[list[Decoded], int, int, int]:
        """The decoded records of a batch (lines that cannot count left out), and how many lines were
        read, invalid (logged here) and left out."""
        decode = stats.decode
        decoded: list[Decoded] = []
        append = decoded.append
        read = invalid = 0
        lineno = first_line - 1
        for line in lines:
            lineno += 1
            if not line or line.isspace():
                continue
            read += 1
            try:
                record = decode(line)
                if record is not None:
                    append(record)
            except Exception as exc:  # a DecodeError, UnicodeDecodeError, a decoder bug ...: the line's fault
                invalid += 1
                self.on_invalid(stats, where or stats.name, lineno, _line_error(exc))
        return decoded, read, invalid, read - invalid - len(decoded)

    def _tally(self, stats: SourceStats, decoded: list[Decoded], read: int, invalid: int,
               ignored: int) -> tuple[int, int, int]:
        """Count decoded records (the counting rules) and the batch's self-metrics; `ignored` lines could
        not count. Returns (read, counted, invalid)."""
        count = self.counter.count
        now = time.monotonic()
        counted = lost = 0
        last_ns = 0
        for record in decoded:
            if type(record) is FlowRecord:
                t = record.time_ns
                if t > last_ns:
                    last_ns = t
                elif not t and record.verdict is not Family.ALLOWED and record.kind in _PAIRING_KINDS:
                    stats.missing_time += 1
                if record.kind == HUBBLE_UNTYPED_DROP:
                    stats.missing_event_type += 1
                if count(record, now, stats):
                    counted += 1
                else:
                    ignored += 1
            elif type(record) is LostEvents:
                lost += record.count
                ignored += 1
            else:  # a flow without event_type that cannot be told from a trace
                stats.missing_event_type += 1
                ignored += 1
        stats.read += read
        stats.invalid += invalid
        stats.counted += counted
        stats.ignored += ignored
        stats.lost += lost
        if last_ns:
            stats.last_event_time = max(stats.last_event_time, last_ns / 1e9)
        elif read:
            stats.last_event_time = max(stats.last_event_time, time.time())
        return read, counted, invalid

    def expire(self) -> int:
        """Drop idle series (call periodically)."""
        now = time.monotonic()
        idle = self.config.series.idle_expiry_seconds
        return sum(store.expire(now, idle) for store in self.stores.values())

    def render(self, *, openmetrics: bool = False) -> bytes:
        return render(self.stores.values(), self.self_metrics.families(), openmetrics=openmetrics)

    def iter_render(self, *, openmetrics: bool = False) -> Iterator[bytes]:
        """The exposition in bounded chunks: what a server should stream at 100k series."""
        return iter_render(self.stores.values(), self.self_metrics.families(), openmetrics=openmetrics)

    def _remember_denied(self, record: FlowRecord, policy: str, stats: SourceStats) -> None:
        self.recent_denied.append(DeniedFlow(
            record.time_ns / 1e9 if record.time_ns else time.time(), stats.name, record.source.name,
            record.destination.name, record.destination_port, record.protocol, policy, record.reason,
            record.direction, record.packets,
        ))

    def _log_invalid(self, stats: SourceStats, where: str, lineno: int, exc: DecodeError) -> None:
        seen = self._reported.get(stats.name, 0)
        self._reported[stats.name] = seen + 1
        if seen < INVALID_REPORT_LIMIT:
            log.warning("%s:%d: invalid %s line: %s", where, lineno, stats.format, exc)
        elif seen == INVALID_REPORT_LIMIT:
            log.warning("%s: further invalid lines are counted in netpol_exporter_events_invalid_total "
                        "but not logged", where)

    def decode_batch(self, stats: SourceStats, lines: list[bytes], first_line: int = 1,
                     where: str = "") -> Callable[[], tuple[int, int, int]]:
        """Decode a batch now (its invalid lines are logged) and count nothing; the returned `commit`
        counts it — valid records, invalid and ignored lines — in one synchronous step and returns
        (lines read, counted, invalid). A push receiver decodes a whole body this way, chunk by chunk
        with the event loop running in between, then commits every chunk at once: a batch is counted
        whole or not at all, and a retry after any answer but 200 finds nothing of it counted. Any
        exception a line raises makes that line invalid."""
        decoded, read, invalid, ignored = self._decode_all(stats, lines, first_line, where)
        return lambda: self._tally(stats, decoded, read, invalid, ignored)
