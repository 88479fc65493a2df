"""Flow files (plain, gzip, or stdin) → events, several files merged by time.

Each file is one node's stream, in time order; merging them (heapq.merge, one line per file in
memory) lets both ends' views of a connection meet within the connection window. Lines without a
time sort with the line before them.
"""

from __future__ import annotations

import gzip
import heapq
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from exporter.model import DecodeError
from exporter.whatif.events import TOUCHED, Event, Touch

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


def _batches(path: str, stats: InputStats) -> Iterator[tuple[str, int, list[bytes]]]:
    """(name for messages, number of the batch's first line, lines) of a file, about _BATCH_BYTES at a time."""
    where = "<stdin>" if path == "-" else path
    stream = open_flows(path)
    lineno = 1
    try:
        while True:
            try:
                lines = stream.readlines(_BATCH_BYTES)
            except (OSError, EOFError) as exc:
                raise ReadError(f"{where}: read error after line {lineno - 1}: {exc}") from None
            if not lines:
                return
            stats.lines += len(lines)
            yield where, lineno, lines
            lineno += len(lines)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _events(path: str, decode: Decode, stats: InputStats) -> Iterator[Event | Touch]:
    """The events of a file, decoded one line at a time as they are consumed: the fast path for lines of
    tracked connections needs the tracker to have seen the lines before."""
    for where, first, lines in _batches(path, stats):
        for lineno, line in enumerate(lines, first):
            try:
                event = decode(line)
            except DecodeError as exc:
                _invalid(stats, where, lineno, line, exc)
                continue
            if event is not None:
                yield event


def _replay_one(path: str, decode: Decode, add: Callable[[Any], None], stats: InputStats) -> None:
    """_events of one file passed to `add`, in a plain loop (the per-line cost of a generator saved)."""
    events = 0
    try:
        for where, first, lines in _batches(path, stats):
            for lineno, line in enumerate(lines, first):
                try:
                    event = decode(line)
                except DecodeError as exc:
                    _invalid(stats, where, lineno, line, exc)
                    continue
                if event is not None:
                    events += 1
                    if event is not TOUCHED:  # already applied by the decoder: most lines of a long stream
                        add(event)
    finally:
        stats.events += events


def _invalid(stats: InputStats, where: str, lineno: int, line: bytes, exc: DecodeError) -> None:
    if line.strip():
        _report_invalid(stats, where, lineno, exc)
    else:
        stats.lines -= 1  # a blank line


def _report_invalid(stats: InputStats, where: str, lineno: int, exc: DecodeError) -> None:
    stats.invalid += 1
    n = stats.invalid_per_file[where] = stats.invalid_per_file.get(where, 0) + 1
    if n <= REPORT_FIRST:
        print(f"{where}:{lineno}: invalid line: {exc}", file=sys.stderr)


def report_invalid_summary(stats: InputStats) -> None:
    for where, n in stats.invalid_per_file.items():
        if n > REPORT_FIRST:
            print(f"{where}: {n} invalid lines in all ({n - REPORT_FIRST} more not shown)", file=sys.stderr)


def _timed(events: Iterator[Event | Touch]) -> Iterator[tuple[int, Event | Touch]]:
    """(sort time, event): an event without a time sorts with the one before it."""
    last = 0
    for event in events:
        if event.time_ns:
            last = event.time_ns
        yield last, event


def replay_files(paths: Sequence[str], decode: Decode, add: Callable[[Any], None], stats: InputStats) -> None:
    """Pass the events of all files to `add`, merged by time (one file: in its order)."""
    if len(paths) == 1:
        _replay_one(paths[0], decode, add, stats)
        return
    for _, event in heapq.merge(*(_timed(_events(p, decode, stats)) for p in paths), key=lambda item: item[0]):
        add(event)
        stats.events += 1
