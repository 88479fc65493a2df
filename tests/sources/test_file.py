"""The file follower, driven for real: files written, appended, rotated, truncated, deleted while it runs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from exporter.config import Config
from exporter.model import Family
from exporter.pipeline import Pipeline
from exporter.sources import make_source
from exporter.sources.file import FileSource
from exporter.sources.options import FileOptions
from tests.sources.helpers import Running, calico_line, total, until

FAST = FileOptions(poll_interval_seconds=0.02, checkpoint_interval_seconds=0.05)


def follower(path: Path, pipeline: Pipeline, state_dir: Path | None = None, **opts: object) -> FileSource:
    options = FAST.model_copy(update=opts)
    return FileSource(f"calico-file:{path}", pipeline, str(path), "calico", options,
                      str(state_dir) if state_dir else None)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as out:
        out.write(data)


async def test_reads_existing_then_appended_lines_and_waits_for_partial_line(tmp_path: Path) -> None:
    log = tmp_path / "flows.log"
    log.write_bytes(calico_line(3) + calico_line(4))
    pipeline = Pipeline()
    source = follower(log, pipeline)
    async with Running(source):
        await until(lambda: total(pipeline) == 7, what="existing lines")
        line = calico_line(5)
        append(log, line[:20])  # a partial line is kept until its newline arrives
        await until(lambda: source.stats.read == 2)
        await __import__("asyncio").sleep(0.1)
        assert total(pipeline) == 7 and source.stats.invalid == 0
        append(log, line[20:])
        await until(lambda: total(pipeline) == 12, what="completed partial line")
        assert source.status.state == "running" and source.stats.up
    assert source.stats.invalid == 0
    assert source.status.state == "stopped"


async def test_missing_file_waits_then_is_read_when_created(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    pipeline = Pipeline()
    source = follower(log, pipeline)
    async with Running(source):
        await until(lambda: source.status.state == "waiting")
        assert not source.stats.up and "does not exist" in source.status.detail
        log.write_bytes(calico_line(2))
        await until(lambda: total(pipeline) == 2, what="new file read")
        assert source.status.state == "running"


async def test_rotation_by_rename_finishes_old_file_then_reads_new(tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    log.write_bytes(calico_line(1))
    pipeline = Pipeline()
    source = follower(log, pipeline)
    async with Running(source):
        await until(lambda: total(pipeline) == 1)
        # The writer appends a last line (no newline yet), renames, then writes to a fresh file.
        append(log, calico_line(10) + calico_line(100)[:-1])
        os.rename(log, tmp_path / "events-2026-11-28T19-20-03.000.log")
        log.write_bytes(calico_line(1000))
        await until(lambda: total(pipeline) == 1111, what="old file finished and new file read")
        append(log, calico_line(10000))
        await until(lambda: total(pipeline) == 11111)
    assert source.stats.invalid == 0
    assert source.metrics.file_reopens[(source.spec, "rotated")] == 1


async def test_truncation_reads_from_start(tmp_path: Path) -> None:
    log = tmp_path / "flows.log"
    log.write_bytes(calico_line(1) + calico_line(2))
    pipeline = Pipeline()
    source = follower(log, pipeline)
    async with Running(source):
        await until(lambda: total(pipeline) == 3)
        with open(log, "r+b") as f:  # copytruncate: same inode, size 0, then new lines
            f.truncate(0)
        await until(lambda: source.metrics.file_reopens.get((source.spec, "truncated")) == 1, what="truncation")
        append(log, calico_line(20))
        await until(lambda: total(pipeline) == 23)


async def test_deleted_file_waits_and_recreated_file_is_read(tmp_path: Path) -> None:
    log = tmp_path / "flows.log"
    log.write_bytes(calico_line(1))
    pipeline = Pipeline()
    source = follower(log, pipeline)
    async with Running(source):
        await until(lambda: total(pipeline) == 1)
        log.unlink()
        await until(lambda: source.status.state == "waiting", what="waiting after delete")
        assert "deleted" in source.status.detail
        log.write_bytes(calico_line(5))
        await until(lambda: total(pipeline) == 6)


async def test_invalid_and_overlong_lines_are_counted_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "flows.log"
    log.write_bytes(b"not json\n" + b"x" * 5000 + b"\n" + calico_line(2))
    pipeline = Pipeline()
    source = follower(log, pipeline, max_line_bytes=1024, read_chunk_bytes=4096)
    async with Running(source):
        await until(lambda: total(pipeline) == 2)
    assert source.stats.invalid == 2 and source.stats.counted == 1


async def test_restart_resumes_from_checkpoint_exactly(tmp_path: Path) -> None:
    log, state = tmp_path / "flows.log", tmp_path / "state"
    log.write_bytes(calico_line(1) + calico_line(2) + calico_line(4)[:15])
    first = Pipeline()
    source = follower(log, first, state)
    async with Running(source):
        await until(lambda: total(first) == 3)
    # Down: the partial line completes and more lines arrive.
    append(log, calico_line(4)[15:] + calico_line(8))
    second = Pipeline()
    again = follower(log, second, state)
    async with Running(again):
        await until(lambda: total(second) == 12, what="resumed lines")
        await __import__("asyncio").sleep(0.1)
    assert total(second) == 12 and again.stats.read == 2  # nothing counted twice, nothing lost


async def test_restart_after_rotation_while_down_finishes_rotated_file(tmp_path: Path) -> None:
    log, state = tmp_path / "flows.log", tmp_path / "state"
    log.write_bytes(calico_line(1))
    first = Pipeline()
    async with Running(follower(log, first, state)):
        await until(lambda: total(first) == 1)
    append(log, calico_line(2))
    os.rename(log, tmp_path / "flows.log.1")
    log.write_bytes(calico_line(4))
    second = Pipeline()
    again = follower(log, second, state)
    async with Running(again):
        await until(lambda: total(second) == 6, what="rest of rotated file and the new file")
        await __import__("asyncio").sleep(0.1)
    assert total(second) == 6 and again.stats.read == 2


async def test_restart_after_truncation_while_down_reads_from_start(tmp_path: Path) -> None:
    log, state = tmp_path / "flows.log", tmp_path / "state"
    log.write_bytes(calico_line(1) + calico_line(2))
    first = Pipeline()
    async with Running(follower(log, first, state)):
        await until(lambda: total(first) == 3)
    log.write_bytes(calico_line(7))  # same inode, shorter than the checkpoint
    second = Pipeline()
    async with Running(follower(log, second, state)):
        await until(lambda: total(second) == 7)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write a read-only directory")
async def test_unwritable_state_dir_keeps_running_and_counts_errors(tmp_path: Path) -> None:
    log, state = tmp_path / "flows.log", tmp_path / "state"
    state.mkdir()
    state.chmod(stat.S_IRUSR | stat.S_IXUSR)
    log.write_bytes(calico_line(1))
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    try:
        async with Running(source):
            await until(lambda: total(pipeline) == 1)
            await until(lambda: source.metrics.checkpoint_errors[source.spec] >= 1, what="checkpoint error")
            append(log, calico_line(2))
            await until(lambda: total(pipeline) == 3)
    finally:
        state.chmod(stat.S_IRWXU)
    text = pipeline.render().decode()
    assert f'netpol_exporter_checkpoint_errors_total{{source="{source.spec}"}}' in text


async def test_state_dir_that_is_a_file_counts_checkpoint_errors(tmp_path: Path) -> None:
    log, state = tmp_path / "flows.log", tmp_path / "not-a-dir"
    state.write_text("x")
    log.write_bytes(calico_line(1))
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    async with Running(source):
        await until(lambda: total(pipeline) == 1)
        await until(lambda: source.metrics.checkpoint_errors[source.spec] >= 1, what="checkpoint error")
    assert source.status.state == "stopped"


async def test_backlog_gauge_and_factory(tmp_path: Path) -> None:
    log = tmp_path / "flows.log"
    log.write_bytes(calico_line(1) * 50)
    pipeline = Pipeline()
    source = make_source(f"calico-file:{log}", pipeline, Config())
    assert isinstance(source, FileSource) and source.format == "calico"
    source.opts = FAST
    async with Running(source):
        await until(lambda: total(pipeline) == 50)
        await until(lambda: source.metrics.backlog_bytes[source.spec] == 0)
    text = pipeline.render().decode()
    assert f'netpol_exporter_source_backlog_bytes{{source="{source.spec}"}} 0' in text
    assert total(pipeline, Family.ALLOWED) == 0


async def test_start_at_end_counts_only_new_lines_and_rotated_files_from_start(tmp_path: Path) -> None:
    log = tmp_path / "flows.log"
    log.write_bytes(calico_line(1) * 5)
    pipeline = Pipeline()
    source = follower(log, pipeline, start_at="end")
    async with Running(source):
        await until(lambda: source.status.state == "running")
        append(log, calico_line(2))
        await until(lambda: total(pipeline) == 2)
        os.rename(log, tmp_path / "flows.log.1")
        log.write_bytes(calico_line(4))
        await until(lambda: total(pipeline) == 6, what="the rotated-in file from its start")
    assert source.stats.read == 2


async def test_corrupt_checkpoint_is_ignored_with_a_warning(tmp_path: Path) -> None:
    from exporter.sources.checkpoint import checkpoint_path

    log, state = tmp_path / "flows.log", tmp_path / "state"
    log.write_bytes(calico_line(2))
    spec = f"calico-file:{log}"
    state.mkdir()
    checkpoint_path(str(state), spec).write_text(json.dumps({"spec": spec, "path": str(log), "offset": "x"}))
    pipeline = Pipeline()
    async with Running(follower(log, pipeline, state)):
        await until(lambda: total(pipeline) == 2)
    checkpoint_path(str(state), spec).write_text("not json")
    again = Pipeline()
    async with Running(follower(log, again, state)):
        await until(lambda: total(again) == 2)


async def test_a_missing_file_is_logged_at_start_and_rate_limited_while_waiting(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import logging

    log = tmp_path / "absent.log"
    source = follower(log, Pipeline())
    source.waiting_log_interval_seconds = 0.3
    caplog.set_level(logging.INFO, logger="netpol_exporter.sources.file")
    async with Running(source):
        await until(lambda: source.status.state == "waiting")
        await asyncio.sleep(0.75)  # about 37 polls at 20 ms: logged at start, then at 0.3 s and 0.6 s
        waiting = [r for r in caplog.records if "waiting for it" in r.getMessage()]
        assert 2 <= len(waiting) <= 4, [r.getMessage() for r in waiting]
        assert waiting[0].levelname == "WARNING"
        assert f"{log} does not exist (yet)" in waiting[0].getMessage()
        log.write_bytes(calico_line(1))
        await until(lambda: source.status.state == "running")
    assert any(f"{log} is there now" in r.getMessage() for r in caplog.records)


async def test_a_line_nested_too_deep_costs_only_itself(tmp_path: Path) -> None:
    """RecursionError out of the JSON parser is that line's `invalid`; the valid lines after it count."""
    log, state = tmp_path / "flows.log", tmp_path / "state"
    deep = b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"\n"
    log.write_bytes(calico_line(1) + deep + calico_line(2) + calico_line(4))
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    async with Running(source):
        await until(lambda: total(pipeline) == 7, what="the lines after the deep one")
        await __import__("asyncio").sleep(0.1)
    assert source.stats.read == 4 and source.stats.invalid == 1 and total(pipeline) == 7
