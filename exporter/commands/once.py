"""`netpol-exporter once --format hubble|calico FILE...`: count flow logs, print the exposition."""

from __future__ import annotations

import argparse
import gzip
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from exporter.commands.common import add_config_arguments, config_from_args
from exporter.commands.jobs import count_files, default_jobs, jobs_argument
from exporter.model import DecodeError
from exporter.selfmetrics import SourceStats

if TYPE_CHECKING:
    from exporter.pipeline import Pipeline

BATCH_BYTES = 1 << 20
REPORT_FIRST = 5


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=("hubble", "calico", "goldmane"),
                        help="input format: Hubble JSON lines, Calico flows.log, Goldmane emitter JSON")
    parser.add_argument("files", nargs="+", metavar="FILE", help="flow-log files (.gz read transparently); - for stdin")
    parser.add_argument("--openmetrics", action="store_true", help="print OpenMetrics instead of Prometheus text")
    parser.add_argument("--jobs", type=jobs_argument, default=0, metavar="N",
                        help="worker processes (default: the cores available); a file and its rotations "
                             "stay in one worker")
    add_config_arguments(parser)


def _open(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    return raw


def batches(stream: BinaryIO) -> Iterator[list[bytes]]:
    """Lines in batches of about BATCH_BYTES; a last line without newline is kept."""
    while True:
        lines = stream.readlines(BATCH_BYTES)
        if not lines:
            return
        yield lines


class InvalidReporter:
    """Reports the first few invalid lines per file on stderr, then a count."""

    def __init__(self) -> None:
        self.per_file: dict[str, int] = {}

    def __call__(self, stats: SourceStats, where: str, lineno: int, exc: DecodeError) -> None:
        n = self.per_file.get(where, 0) + 1
        self.per_file[where] = n
        if n <= REPORT_FIRST:
            print(f"{where}:{lineno}: invalid {stats.format} line: {exc}", file=sys.stderr)

    def summary(self) -> None:
        for where, n in self.per_file.items():
            if n > REPORT_FIRST:
                print(f"{where}: {n} invalid lines in all ({n - REPORT_FIRST} more not shown)", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    from exporter.pipeline import Pipeline

    config = config_from_args(args)
    reporter = InvalidReporter()
    pipeline = Pipeline(config, on_invalid=reporter)
    enrichment = _start_enrichment(pipeline)
    for path in args.files:  # sources in command-line order, whatever the workers' order
        pipeline.source(f"{args.format}:{path}", args.format)

    def count_file(pipeline: Pipeline, path: str) -> int:
        status = 0
        where = "<stdin>" if path == "-" else path
        stats = pipeline.source(f"{args.format}:{path}", args.format)
        try:
            stream = _open(path)
        except OSError as exc:
            print(f"netpol-exporter: {path}: {exc.strerror or exc}", file=sys.stderr)
            stats.up = False
            return 1
        lineno = 1
        try:
            for lines in batches(stream):
                pipeline.ingest(stats, lines, first_line=lineno, where=where)
                lineno += len(lines)
        except (OSError, EOFError) as exc:
            print(f"netpol-exporter: {where}: read error after line {lineno - 1}: {exc}", file=sys.stderr)
            stats.up = False
            status = 1
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        return status

    status = count_files(pipeline, args.files, count_file, jobs=args.jobs or default_jobs(), on_invalid=reporter)
    reporter.summary()
    if enrichment is not None:
        enrichment.stop()
    for chunk in pipeline.iter_render(openmetrics=args.openmetrics):
        sys.stdout.buffer.write(chunk)
    sys.stdout.flush()
    return status


def _start_enrichment(pipeline: Pipeline) -> Any:
    """Kubernetes enrichment when configured (exporter.kube), synced before counting; None when off."""
    if pipeline.config.kubernetes.enabled is False:
        return None  # switched off: not even the import (a fifth of `once`'s start-up)
    try:
        from exporter.kube.attach import attach_for_once
    except ModuleNotFoundError:
        return None
    return attach_for_once(pipeline)
