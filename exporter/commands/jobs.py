"""`once --jobs N`: files counted in worker processes, their counts merged exactly.

Files that continue one another — a base file and its rotations, by the names lumberjack
(`<name>-<2006-01-02T15-04-05.000><ext>[.gz]`, Cilium's exporter) and logrotate (`<name>.1[.gz]`)
give them — form one group, counted as one stream (one pairing state), oldest first and the base
file last. Every group is counted into a fresh pipeline, in a worker process or in this one, and
the groups' series and per-file statistics are added to the command's pipeline in command-line
order: `--jobs N` and `--jobs 1` give identical counts. (Past the series cap the totals stay exact,
but which label sets fold into `__overflow__` follows group order, not the order of one stream.)
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import multiprocessing
import os
import re
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from exporter.config import Config
from exporter.model import Family
from exporter.pipeline import Pipeline
from exporter.selfmetrics import SourceStats

# Count one file into a pipeline (registering its source there); returns the exit status (0 or 1).
CountFile = Callable[[Pipeline, str], int]

_LUMBERJACK = re.compile(r"^(?P<name>.+)-(?P<stamp>\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3})(?P<ext>\.[^.]*)?$")
_LOGROTATE = re.compile(r"^(?P<base>.+)\.(?P<number>\d+)$")


def rotation_key(path: str) -> tuple[str, tuple[Any, ...]]:
    """(the base file a file continues, its age order within the family: smaller is older)."""
    directory, name = os.path.split(path)
    bare = name[:-3] if name.endswith(".gz") else name
    m = _LUMBERJACK.match(bare)
    if m is not None:
        return os.path.normpath(os.path.join(directory, m["name"] + (m["ext"] or ""))), (0, m["stamp"])
    m = _LOGROTATE.match(bare)
    if m is not None:
        return os.path.normpath(os.path.join(directory, m["base"])), (1, -int(m["number"]))
    return os.path.normpath(path), (2,)


def file_groups(paths: list[str]) -> list[list[str]]:
    """Rotation families in order of first appearance, each oldest first and its base file last."""
    families: dict[str, list[tuple[tuple[Any, ...], int, str]]] = {}
    for position, path in enumerate(paths):
        if path == "-":
            families.setdefault(f"-{position}", []).append(((2,), position, path))
            continue
        base, age = rotation_key(path)
        families.setdefault(base, []).append((age, position, path))
    return [[path for _age, _pos, path in sorted(members)] for members in families.values()]


def jobs_argument(text: str) -> int:
    """`--jobs`: a positive number of worker processes."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of worker processes, got {text!r}")
    return value


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass
class GroupResult:
    """What one group's counting adds to the command's pipeline (picklable)."""

    status: int = 0
    sources: list[SourceStats] = field(default_factory=list)
    series: dict[Family, dict[tuple[str, ...], float]] = field(default_factory=dict)
    folded: dict[Family, int] = field(default_factory=dict)
    invalid_reported: dict[str, int] = field(default_factory=dict)  # a worker's; in-process groups report directly
    stderr: str = ""  # what a worker's counting printed there


def _group_config(config: Config) -> Config:
    # Groups keep every label: the command's stores project and cap once, at the merge.
    return config.model_copy(update={"labels": config.labels.model_copy(update={"disabled": []})})


def count_group(config: Config, count_file: CountFile, group: list[str], on_invalid: Any,
                enrich: Any = None) -> GroupResult:
    """Count one group's files, in order, as one stream into a fresh pipeline."""
    pipeline = Pipeline(_group_config(config), on_invalid=on_invalid)
    pipeline.counter.enrich = enrich
    status = 0
    for path in group:
        status |= count_file(pipeline, path)
    return GroupResult(
        status,
        list(pipeline.self_metrics.sources.values()),
        {family: {key: entry[0] for key, entry in store.series.items()} for family, store in pipeline.stores.items()},
        {family: store.folded for family, store in pipeline.stores.items()},
    )


def merge(pipeline: Pipeline, result: GroupResult, on_invalid: Any) -> int:
    """Add a group's counts to the command's pipeline; returns the group's exit status."""
    if result.stderr:
        sys.stderr.write(result.stderr)
        sys.stderr.flush()
    for family, series in result.series.items():
        store = pipeline.stores[family]
        add = store.add
        for key, value in series.items():
            add(key, value, 0.0)
        store.folded += result.folded[family]
    for counted in result.sources:
        stats = pipeline.source(counted.name, counted.format)
        for f in dataclasses.fields(SourceStats):
            if f.name in ("name", "format", "decode"):
                continue
            mine, theirs = getattr(stats, f.name), getattr(counted, f.name)
            if isinstance(mine, bool):
                setattr(stats, f.name, mine and theirs)
            elif isinstance(mine, str):
                setattr(stats, f.name, mine or theirs)
            elif f.name.endswith("_time"):
                setattr(stats, f.name, max(mine, theirs))
            elif isinstance(mine, int | float):
                setattr(stats, f.name, mine + theirs)
    per_file = getattr(on_invalid, "per_file", None)
    if isinstance(per_file, dict):
        per_file.update(result.invalid_reported)
    return result.status


# What a forked worker counts: set before the pool starts, inherited by the workers (closures and
# reporters need not be picklable that way; only group indexes and results cross the pipe).
_job: tuple[Config, CountFile, list[list[str]], Any, Any] | None = None


def _count_in_worker(index: int) -> GroupResult:
    assert _job is not None
    config, count_file, groups, on_invalid, enrich = _job
    if hasattr(on_invalid, "per_file"):
        on_invalid.per_file = {}  # this worker's own reports only
    # messages go to the command's stderr at the merge, in group order: never interleaved, as with --jobs 1
    captured = io.StringIO()
    previous, sys.stderr = sys.stderr, captured
    try:
        result = count_group(config, count_file, groups[index], on_invalid, enrich)
        result.stderr = captured.getvalue()
        result.invalid_reported = dict(getattr(on_invalid, "per_file", {}))
    finally:
        sys.stderr = previous
    return result


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _results(config: Config, count_file: CountFile, groups: list[list[str]], on_invalid: Any, jobs: int,
             enrich: Any) -> Iterator[GroupResult]:
    parallel = [i for i, group in enumerate(groups) if "-" not in group]
    workers = min(jobs, len(parallel))
    # Kubernetes enrichment keeps its caches in threads of this process: counted here. Attribution from
    # policy files is plain data a forked worker inherits.
    forkable = enrich is None or getattr(enrich, "fork_safe", False)
    if workers < 2 or not forkable or "fork" not in multiprocessing.get_all_start_methods():
        for group in groups:
            yield count_group(config, count_file, group, on_invalid, enrich)
        return
    global _job
    _job = (config, count_file, groups, on_invalid, enrich)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            # the largest groups first, so that no worker is left with a big one at the end
            parallel.sort(key=lambda i: -sum(_size(path) for path in groups[i]))
            pending = {i: pool.submit(_count_in_worker, i) for i in parallel}
            for i, group in enumerate(groups):
                if i not in pending:
                    yield count_group(config, count_file, group, on_invalid, enrich)
                    continue
                try:
                    yield pending[i].result()
                except BrokenProcessPool:
                    raise SystemExit("netpol-exporter: a worker process died (killed, out of memory?) before "
                                     "it had counted its files; no metrics printed: retry with fewer --jobs "
                                     f"than {workers}") from None
    finally:
        _job = None


def count_files(pipeline: Pipeline, paths: list[str], count_file: CountFile, *, jobs: int,
                on_invalid: Any = None) -> int:
    """Count `paths` into `pipeline` with up to `jobs` worker processes; returns the exit status.

    Register the sources in command-line order first, so the output does not depend on `jobs`.
    With Kubernetes enrichment on (its caches live in this process), groups are counted here.
    """
    status = 0
    groups = file_groups(paths)
    for result in _results(pipeline.config, count_file, groups, on_invalid, jobs, pipeline.counter.enrich):
        status |= merge(pipeline, result, on_invalid)
    return status
