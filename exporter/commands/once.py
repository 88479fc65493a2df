"""`netpol-exporter once --format hubble|calico FILE...`: count flow logs, print the exposition
(or, with --table/--json, the counts for a person; exit statuses in exporter.commands.report)."""

from __future__ import annotations

import argparse
import gzip
import io
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from exporter.commands import report
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
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="flow-log files (.gz and .zst read transparently); - for stdin")
    report.add_output_arguments(parser)
    parser.add_argument("--jobs", type=jobs_argument, default=0, metavar="N",
                        help="worker processes (default: the cores available); a file and its rotations "
                             "stay in one worker")
    add_config_arguments(parser)
    parser.epilog = report.EXIT_STATUSES


def _open(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    magic = raw.peek(4)[:4]
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":  # zstd: Calico Enterprise's compressed flow-log backups
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
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
    if config.policies:  # --policies: attribution from files (no cluster); the engine imported only then
        from exporter.netpol.flowattrib import attach_from_config

        attach_from_config(pipeline, config)
    enrichment = _start_enrichment(pipeline)
    outcomes: list[report.FileOutcome] = []
    for path in args.files:  # sources in command-line order, whatever the workers' order
        stats = pipeline.source(f"{args.format}:{path}", args.format)
        outcomes.append(report.FileOutcome("<stdin>" if path == "-" else path, stats))

    def count_file(pipeline: Pipeline, path: str) -> int:
        """Count one file (in this process or a worker); the error that stopped it goes to its stats."""
        where = "<stdin>" if path == "-" else path
        stats = pipeline.source(f"{args.format}:{path}", args.format)
        try:
            stream = _open(path)
        except OSError as exc:
            stats.error = f"cannot read: {exc.strerror or exc}"
            print(f"netpol-exporter: {path}: {stats.error}", file=sys.stderr)
            stats.up = False
            return 1
        lineno = 1
        try:
            for lines in batches(stream):
                pipeline.ingest(stats, lines, first_line=lineno, where=where)
                lineno += len(lines)
        except (OSError, EOFError) as exc:
            stats.error = f"read error after line {lineno - 1}: {exc}"
            print(f"netpol-exporter: {where}: {stats.error}", file=sys.stderr)
            stats.up = False
            return 1
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()
        return 0

    count_files(pipeline, args.files, count_file, jobs=args.jobs or default_jobs(), on_invalid=reporter)
    reporter.summary()
    if enrichment is not None:
        enrichment.stop()
    report.print_summaries(outcomes, sys.stderr)
    status = report.exit_status(outcomes, args.strict)
    if status != 0:
        return status  # nothing on stdout: the errors above name the files
    if args.json:
        report.write_json(pipeline, sys.stdout)
    elif args.table:
        report.write_table(pipeline, sys.stdout, args.top)
    else:
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
