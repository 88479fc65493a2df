"""What `once` tells a person: per-file summaries, the exit status, and the counts as a table or JSON.

Exit statuses of `once`: 0 counted (some invalid lines allowed; well-formed lines that do not count are
fine); 1 a file missing or unreadable, or a file with lines of which none is valid (with `--strict`:
any invalid line); 2 usage or configuration error. On 1 or 2 nothing is printed to stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from exporter.model import Family
from exporter.selfmetrics import SourceStats

if TYPE_CHECKING:
    from exporter.pipeline import Pipeline

EXIT_STATUSES = (
    "exit status: 0 counted (a few invalid lines allowed); 1 a file missing or unreadable, or a file of "
    "which no line is valid (--strict: any invalid line); 2 usage or configuration error. On 1 and 2 "
    "nothing is printed on stdout."
)
JSON_KEYS = {Family.DROPPED: "dropped", Family.ALLOWED: "allowed", Family.AUDIT: "audit"}
TABLE_TITLES = {Family.DROPPED: "Denied", Family.ALLOWED: "Allowed", Family.AUDIT: "Audit (would be denied)"}
DEFAULT_TOP = 20
SHRINKABLE = (1, 3, 4)  # policy, source, destination: cut before count, direction, port or reason
MIN_CELL = 8  # a cell is never cut shorter than this when the table is fitted to the terminal


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--openmetrics", action="store_true", help="print OpenMetrics instead of Prometheus text")
    shape.add_argument("--table", action="store_true",
                       help="print the top denied and allowed flows as tables sized to the terminal")
    shape.add_argument("--json", action="store_true",
                       help='print every series as JSON: {"dropped": [...], "allowed": [...], "audit": [...]}')
    parser.add_argument("--top", type=_positive, default=DEFAULT_TOP, metavar="N",
                        help=f"rows per table with --table (default {DEFAULT_TOP})")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any invalid line")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


@dataclass
class FileOutcome:
    """One input of `once`: its stats, and the error that stopped reading it (None when read to the end)."""

    where: str
    stats: SourceStats

    @property
    def error(self) -> str | None:
        return self.stats.error or None

    @property
    def nothing_valid(self) -> bool:
        return self.stats.read > 0 and self.stats.invalid == self.stats.read

    def failed(self, strict: bool) -> bool:
        return self.error is not None or self.nothing_valid or (strict and self.stats.invalid > 0)

    def summary(self) -> str:
        s = self.stats
        counts = f"read {s.read}, counted {s.counted}, ignored {s.ignored}, invalid {s.invalid}"
        if self.error is not None and s.read == 0:
            return f"{self.where}: not read ({self.error})"
        if self.error is not None:
            return f"{self.where}: {counts} (stopped: {self.error})"
        if self.nothing_valid:
            return f"{self.where}: {counts} (no valid {s.format} line: is this a {s.format} flow log?)"
        return f"{self.where}: {counts}"


def print_summaries(outcomes: Iterable[FileOutcome], err: TextIO) -> None:
    for outcome in outcomes:
        err.write(outcome.summary() + "\n")


def exit_status(outcomes: Sequence[FileOutcome], strict: bool) -> int:
    return 1 if any(o.failed(strict) for o in outcomes) else 0


def series(pipeline: Pipeline, family: Family) -> list[dict[str, Any]]:
    """Every series of a family as {label: value, ..., "count": n}, highest count first."""
    store = pipeline.stores[family]
    rows = []
    for key, entry in list(store.series.items()):
        value = entry[0]
        row: dict[str, Any] = dict(zip(store.label_names, key, strict=True))
        row["count"] = int(value) if float(value).is_integer() else value
        rows.append(row)
    rows.sort(key=lambda r: (-r["count"], tuple(str(v) for v in r.values())))
    return rows


def write_json(pipeline: Pipeline, out: TextIO) -> None:
    json.dump({name: series(pipeline, family) for family, name in JSON_KEYS.items()}, out, indent=2)
    out.write("\n")


def _peer(name: str, namespace: str) -> str:
    if not name:
        return namespace or "-"
    return name if not namespace or name.startswith(f"{namespace}/") else f"{namespace}/{name}"


def _table_rows(rows: list[dict[str, Any]], with_reason: bool) -> list[list[str]]:
    out = []
    for r in rows:
        port = r.get("destination_port", "")
        protocol = r.get("protocol", "")
        cells = [
            str(r["count"]),
            r.get("policy", "-") or "-",
            r.get("direction", "-") or "-",
            _peer(r.get("source", ""), r.get("source_namespace", "")),
            _peer(r.get("destination", ""), r.get("destination_namespace", "")),
            f"{port}/{protocol}" if port else (protocol or "-"),
        ]
        if with_reason:
            cells.append(r.get("reason", "-") or "-")
        out.append(cells)
    return out


def fit_widths(widths: list[int], floors: list[int], total: int, shrinkable: Sequence[int], gap: int = 2) -> list[int]:
    """Shrink the widest of the `shrinkable` columns (never below its floor) until the row fits `total`."""
    widths = list(widths)
    while sum(widths) + gap * (len(widths) - 1) > total:
        widest = max(shrinkable, key=lambda i: widths[i] - floors[i])
        if widths[widest] <= floors[widest]:
            break
        widths[widest] -= 1
    return widths


def _cut(cell: str, width: int) -> str:
    """Shortened in the middle: both a namespace and the end of a workload name stay readable."""
    if len(cell) <= width:
        return cell
    head = (width - 1) // 2
    return cell[:head] + "…" + cell[len(cell) - (width - 1 - head):]


def format_table(rows: list[list[str]], header: list[str], width: int, shrinkable: Sequence[int]) -> list[str]:
    table = [header, *rows]
    natural = [max(len(row[i]) for row in table) for i in range(len(header))]
    floors = [min(n, max(MIN_CELL, len(h))) for n, h in zip(natural, header, strict=True)]
    widths = fit_widths(natural, floors, width, shrinkable)
    lines = []
    for row in table:
        cells = [_cut(cell, w) for cell, w in zip(row, widths, strict=True)]
        cells[0] = cells[0].rjust(widths[0])  # counts right-aligned
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return lines


def write_table(pipeline: Pipeline, out: TextIO, top: int = DEFAULT_TOP, width: int | None = None) -> None:
    width = width or shutil.get_terminal_size().columns
    first = True
    for family, title in TABLE_TITLES.items():
        rows = series(pipeline, family)
        if family is Family.AUDIT and not rows:
            continue  # audit mode is rare: no empty section for it
        if not first:
            out.write("\n")
        first = False
        shown = f"top {top} of {len(rows)}" if len(rows) > top else f"{len(rows)}"
        total = sum(r["count"] for r in rows)
        out.write(f"{title} flows: {shown} series, {total} in all\n")
        if not rows:
            continue
        with_reason = family is not Family.ALLOWED
        header = ["COUNT", "POLICY", "DIRECTION", "SOURCE", "DESTINATION", "PORT"] + (["REASON"] if with_reason
                                                                                      else [])
        for line in format_table(_table_rows(rows[:top], with_reason), header, width, SHRINKABLE):
            out.write(line + "\n")
