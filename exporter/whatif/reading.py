"""Flow files (plain, gzip, or stdin) → events, several files merged by time.

Each file is one node's stream, in time order; merging them (heapq.merge, one line per file in
memory) lets both ends' views of a connection meet within the connection window. Lines without a
time sort with the line before them.
"""

from __future__ import annotations

import gzip
import heapq
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from exporter.model import DecodeError
from exporter.whatif.events import Event, Touch

REPORT_FIRST = 5
Decode = Callable[[bytes], Event | Touch | None]
_BATCH_BYTES = 1 << 20


class ReadError(Exception):
    """An input that cannot be read at all (missing file, I/O error): the command exits 2."""


@dataclass
class InputStats:
    lines: int = 0
    events: int = 0
    invalid: int = 0
    replies: int = 0
    invalid_per_file: dict[str, int] = field(default_factory=dict)


def open_flows(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the reader
        if raw.peek(2)[:2] == b"\x1f\x8b":
            return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    except OSError as exc:
        raise ReadError(f"{path}: {exc.strerror or exc}") from None
    return raw


def _file_events(path: str, decode: Decode, stats: InputStats) -> Iterator[tuple[int, Event | Touch]]:
    where = "<stdin>" if path == "-" else path
    stream = open_flows(path)
    lineno = 0
    last_time = 0
    try:
        while True:
            try:
                lines = stream.readlines(_BATCH_BYTES)
            except (OSError, EOFError) as exc:
                raise ReadError(f"{where}: read error after line {lineno}: {exc}") from None
            if not lines:
                return
            for line in lines:
                lineno += 1
                if len(line) < 3 and not line.strip():
                    continue  # a blank line
                stats.lines += 1
                try:
                    event = decode(line)
                except DecodeError as exc:
                    _report_invalid(stats, where, lineno, exc)
                    continue
                if event is None:
                    continue
                stats.events += 1
                if event.time_ns:
                    last_time = event.time_ns
                yield last_time, event
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _report_invalid(stats: InputStats, where: str, lineno: int, exc: DecodeError) -> None:
    stats.invalid += 1
    n = stats.invalid_per_file[where] = stats.invalid_per_file.get(where, 0) + 1
    if n <= REPORT_FIRST:
        print(f"{where}:{lineno}: invalid line: {exc}", file=sys.stderr)


def report_invalid_summary(stats: InputStats) -> None:
    for where, n in stats.invalid_per_file.items():
        if n > REPORT_FIRST:
            print(f"{where}: {n} invalid lines in all ({n - REPORT_FIRST} more not shown)", file=sys.stderr)


def read_events(paths: Iterable[str], decode: Decode, stats: InputStats) -> Iterator[Event | Touch]:
    """Events of all files, merged by time."""
    streams = [_file_events(p, decode, stats) for p in paths]
    if len(streams) == 1:
        for _, event in streams[0]:
            yield event
        return
    for _, event in heapq.merge(*streams, key=lambda item: item[0]):
        yield event
