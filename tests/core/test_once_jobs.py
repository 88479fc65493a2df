"""`once --jobs N`: rotation families stay one stream; N workers count exactly what one does."""

from __future__ import annotations

import dataclasses
import gzip
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.commands.jobs import count_files, file_groups, rotation_key
from exporter.config import Config
from exporter.model import Family
from exporter.pipeline import Pipeline
from exporter.selfmetrics import SourceStats
from tests.core.flows import hubble_line

EXE = [sys.executable, "-m", "exporter", "once", "--format", "hubble", "--no-kubernetes"]
LUMBERJACK_OLD = "events-2024-04-30T09-00-00.000.log"
LUMBERJACK_NEW = "events-2024-05-01T10-00-00.000.log.gz"


def test_rotation_families_oldest_first_base_last() -> None:
    paths = ["a/events.log", f"a/{LUMBERJACK_NEW}", "b/events.log.1", f"a/{LUMBERJACK_OLD}", "b/events.log",
             "b/events.log.2.gz", "c.log", "-", "x/flows-2024-05-01T10-00-00.000.gz", "x/flows"]
    assert file_groups(paths) == [
        [f"a/{LUMBERJACK_OLD}", f"a/{LUMBERJACK_NEW}", "a/events.log"],
        ["b/events.log.2.gz", "b/events.log.1", "b/events.log"],
        ["c.log"],
        ["-"],
        ["x/flows-2024-05-01T10-00-00.000.gz", "x/flows"],
    ]
    # a rotated file given without its base still joins its family, however the directory is spelled
    assert rotation_key(f"a/{LUMBERJACK_OLD}")[0] == rotation_key("./a/events.log.3")[0] == "a/events.log"
    assert file_groups(["./a/events.log", "a//events.log.1"]) == [["a//events.log.1", "./a/events.log"]]


def _time(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"2024-05-01T{10 + hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}000000Z"


def _node_stream(node: str, rng: random.Random, n: int) -> list[bytes]:
    """Allowed verdicts and denied packets (a DROPPED verdict, then its drop twin 1 ms later)."""
    lines = []
    for i in range(n):
        t = i * 300
        port = {"TCP": {"source_port": 40000 + rng.randrange(20), "destination_port": rng.choice([80, 443, 7235])}}
        if rng.random() < 0.5:
            lines.append(hubble_line(verdict="FORWARDED", node=node, time=_time(t), l4=port))
        else:
            lines.append(hubble_line(verdict="DROPPED", reason="POLICY_DENIED", node=node, time=_time(t), l4=port))
            if rng.random() < 0.9:  # sometimes the drop event was lost: the verdict counts alone
                lines.append(hubble_line(event_type=1, verdict="DROPPED", reason="POLICY_DENIED", node=node,
                                         time=_time(t + 1), l4=port))
    return lines


def _write_family(directory: Path, node: str, rng: random.Random) -> list[Path]:
    """A base file and two rotations; the stream is cut between a verdict and its drop twin."""
    directory.mkdir()
    lines = _node_stream(node, rng, 300)
    cuts = [i for i in range(1, len(lines)) if b'"type":1' in lines[i] and b'"type":5' in lines[i - 1]]
    first, second = cuts[10], cuts[-10]
    old, new, base = directory / LUMBERJACK_OLD, directory / LUMBERJACK_NEW, directory / "events.log"
    old.write_bytes(b"\n".join(lines[:first]) + b"\n")
    new.write_bytes(gzip.compress(b"\n".join(lines[first:second]) + b"\n"))
    base.write_bytes(b"\n".join(lines[second:]) + b"\n")
    return [base, new, old]  # deliberately newest first on the command line


@pytest.fixture
def eight_files(tmp_path: Path) -> list[str]:
    rng = random.Random(15)
    paths: list[Path] = []
    for k in range(2):
        paths += _write_family(tmp_path / f"family{k}", f"node-{k}", rng)
    for k in range(2, 4):
        path = tmp_path / f"node-{k}.log"
        lines = _node_stream(f"node-{k}", rng, 200)
        lines.insert(7, b'{"flow": {"verdict": 3')  # an invalid line, reported by its worker
        lines.insert(9, b'{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"%d"},'
                        b'"node_name":"node-%d","time":"2024-05-01T10:00:01Z"}' % (k * 10, k))
        path.write_bytes(b"\n".join(lines) + b"\n")
        paths.append(path)
    paths.append(tmp_path / "missing.log")
    return [str(p) for p in paths]


def test_jobs_n_gives_exactly_what_jobs_1_gives(eight_files: list[str]) -> None:
    # with the missing file: exit 1, nothing on stdout, the same messages on stderr whatever --jobs
    failed = {jobs: subprocess.run([*EXE, "--jobs", str(jobs), *eight_files], capture_output=True, timeout=120)
              for jobs in (1, 2)}
    assert failed[1].returncode == failed[2].returncode == 1 and failed[1].stdout == failed[2].stdout == b""
    assert failed[1].stderr == failed[2].stderr and b"missing.log: not read" in failed[1].stderr
    readable = [p for p in eight_files if not p.endswith("missing.log")]
    runs = {jobs: subprocess.run([*EXE, "--jobs", str(jobs), *readable], capture_output=True, timeout=120)
            for jobs in (1, 2, 3)}
    assert runs[1].returncode == 0
    assert b"networkpolicy_dropped_packets_total{" in runs[1].stdout
    assert b"node-2.log:8: invalid hubble line" in runs[1].stderr
    node2 = next(p for p in eight_files if p.endswith("node-2.log"))
    read = len(Path(node2).read_bytes().splitlines())
    assert f'netpol_exporter_events_read_total{{source="hubble:{node2}"}} {read}\n'.encode() in runs[1].stdout
    for jobs in (2, 3):
        assert runs[jobs].returncode == runs[1].returncode
        assert runs[jobs].stdout == runs[1].stdout
        assert runs[jobs].stderr == runs[1].stderr  # workers' messages in command order, whole lines


def _count_file(pids: Path) -> object:
    def count_file(pipeline: Pipeline, path: str) -> int:
        with open(pids, "a") as out:
            out.write(f"{os.getpid()}\n")
        stats = pipeline.source(f"hubble:{path}", "hubble")
        with open(path, "rb") as f:
            data = f.read()
        pipeline.ingest(stats, (gzip.decompress(data) if path.endswith(".gz") else data).splitlines())
        return 0

    return count_file


def test_workers_count_rotations_as_one_stream(eight_files: list[str], tmp_path: Path) -> None:
    files = [p for p in eight_files if "family" in p]
    results = {}
    for jobs in (1, 2):
        pids = tmp_path / f"pids{jobs}"
        pipeline = Pipeline(Config(labels={"disabled": ["source"]}))
        for path in files:
            pipeline.source(f"hubble:{path}", "hubble")
        assert count_files(pipeline, files, _count_file(pids), jobs=jobs) == 0  # type: ignore[arg-type]
        workers = set(pids.read_text().split())
        assert (str(os.getpid()) in workers) is (jobs == 1)
        assert len(workers) == jobs
        dropped = pipeline.stores[Family.DROPPED]
        stats = pipeline.self_metrics.sources
        results[jobs] = (dict(dropped.series), {name: (s.read, s.counted, s.paired) for name, s in stats.items()})
        assert dropped.label_names == tuple(n for n in dropped.all_label_names if n != "source")
        # a drop at the head of each later file paired with the verdict at the tail of the file before it
        assert sum(stats[f"hubble:{p}"].paired for p in files) == sum(stats[f"hubble:{p}"].read for p in files) - \
            sum(stats[f"hubble:{p}"].counted for p in files)
        verdicts = sum(1 for p in files for line in _lines(p) if b'"type":5' in line and b"DROPPED" in line)
        drops = sum(1 for p in files for line in _lines(p) if b'"type":1' in line)
        assert sum(stats[f"hubble:{p}"].paired for p in files) == drops
        assert sum(entry[0] for entry in dropped.series.values()) == verdicts
    assert results[1][1] == results[2][1]
    assert {k: v[0] for k, v in results[1][0].items()} == {k: v[0] for k, v in results[2][0].items()}


def _lines(path: str) -> list[bytes]:
    data = Path(path).read_bytes()
    return (gzip.decompress(data) if path.endswith(".gz") else data).splitlines()


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_jobs_must_be_positive(value: str) -> None:
    proc = subprocess.run([*EXE, "--jobs", value, "-"], input=b"", capture_output=True, timeout=60)
    assert proc.returncode == 2
    assert b"--jobs" in proc.stderr and b"positive" in proc.stderr


def test_a_worker_that_dies_is_a_clear_error(eight_files: list[str]) -> None:
    parent = os.getpid()

    def count_file(pipeline: Pipeline, path: str) -> int:
        if os.getpid() != parent and path.endswith("node-3.log"):
            os._exit(9)  # as the kernel's OOM killer would end it
        return 0

    pipeline = Pipeline()
    with pytest.raises(SystemExit, match=r"worker process died .*no metrics printed: retry with fewer --jobs than 2"):
        count_files(pipeline, eight_files, count_file, jobs=2)


def test_merged_counts_equal_one_pipeline_counting_every_file(eight_files: list[str]) -> None:
    """The merge loses nothing: every store and every per-file statistic equals one pipeline's over all files
    (the nodes differ, so nothing pairs across groups)."""
    files = [p for p in eight_files if not p.endswith("missing.log")]

    def count_file(pipeline: Pipeline, path: str) -> int:
        stats = pipeline.source(f"hubble:{path}", "hubble")
        pipeline.ingest(stats, _lines(path), where=path)
        return 0

    direct = Pipeline()
    for group in file_groups(files):
        for path in group:
            count_file(direct, path)
    merged = Pipeline()
    for path in files:
        merged.source(f"hubble:{path}", "hubble")
    count_files(merged, files, count_file, jobs=2)
    for family, store in direct.stores.items():
        assert {k: v[0] for k, v in merged.stores[family].series.items()} == {k: v[0] for k, v in store.series.items()}
        assert merged.stores[family].folded == store.folded
    fields = [f.name for f in dataclasses.fields(SourceStats) if f.name != "decode"]
    assert len(direct.self_metrics.sources) == len(files)
    for name, stats in direct.self_metrics.sources.items():
        assert [getattr(merged.self_metrics.sources[name], f) for f in fields] == [getattr(stats, f) for f in fields]


def test_jobs_with_policy_files_name_the_same_policies(tmp_path: Path) -> None:
    """Attribution from policy files is plain data: workers inherit it and count what one process does."""
    from exporter.service.demo import DEMO_POLICIES

    recording = Path(__file__).parents[1] / "whatif" / "data" / "demo-flows.jsonl.gz"
    lines = gzip.decompress(recording.read_bytes()).splitlines(keepends=True)
    halves = [tmp_path / "node-a.jsonl", tmp_path / "node-b.jsonl"]
    halves[0].write_bytes(b"".join(lines[: len(lines) // 2]))
    halves[1].write_bytes(b"".join(lines[len(lines) // 2:]))
    runs = {jobs: subprocess.run([*EXE, "--jobs", str(jobs), "--policies", DEMO_POLICIES, *map(str, halves)],
                                 capture_output=True, timeout=120) for jobs in (1, 2)}
    assert runs[1].returncode == runs[2].returncode == 0, runs[1].stderr
    assert runs[1].stdout == runs[2].stdout
    assert b'policy="temporal/temporal-history-policy"' in runs[1].stdout
