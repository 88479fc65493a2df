"""Rotation while the exporter is down (and faster than it polls): every byte read once, in order.

Backup names follow lumberjack (Cilium's Hubble exporter; Calico Felix's flows.log writer uses it too)
and logrotate; see exporter/sources/rotation.py.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
from pathlib import Path

import pytest

from exporter.pipeline import Pipeline
from exporter.sources.file import FileSource
from exporter.sources.options import FileOptions
from exporter.sources.rotation import rotation_chain
from tests.sources.helpers import Running, calico_line, total, until

FAST = FileOptions(poll_interval_seconds=0.02, checkpoint_interval_seconds=0.05)


def follower(path: Path, pipeline: Pipeline, state_dir: Path, **opts: object) -> FileSource:
    return FileSource(f"calico-file:{path}", pipeline, str(path), "calico", FAST.model_copy(update=opts),
                      str(state_dir))


def lines(*packets: int) -> bytes:
    return b"".join(calico_line(p) for p in packets)


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as out:
        out.write(data)


async def run_until(source: FileSource, pipeline: Pipeline, expected: int) -> None:
    async with Running(source):
        await until(lambda: total(pipeline) >= expected, what=f"total {expected}")
        await asyncio.sleep(0.15)  # anything counted twice would show now


async def first_run(log: Path, state: Path, expected: int) -> None:
    pipeline = Pipeline()
    await run_until(follower(log, pipeline, state), pipeline, expected)


async def test_two_lumberjack_rotations_while_down_read_every_file_in_order(tmp_path: Path) -> None:
    log, state = tmp_path / "events.log", tmp_path / "state"
    log.write_bytes(lines(1, 2))
    await first_run(log, state, 3)
    append(log, lines(4))  # written after the last checkpoint, then rotated away
    os.rename(log, tmp_path / "events-2026-12-04T10-00-00.000.log")
    log.write_bytes(lines(8, 16))
    os.rename(log, tmp_path / "events-2026-12-04T10-00-05.000.log")
    log.write_bytes(lines(32))
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    await run_until(source, pipeline, 60)
    assert total(pipeline) == 60 and source.stats.read == 4 and source.stats.invalid == 0
    async with Running(source):  # PATH is followed afterwards
        append(log, lines(64))
        await until(lambda: total(pipeline) == 124, what="PATH followed after the backups")


async def test_equal_sized_files_on_a_reused_inode_are_told_apart(tmp_path: Path) -> None:
    """Equal sizes and equal first bytes: only the bytes before the offset tell the files apart."""
    log, state = tmp_path / "events.log", tmp_path / "state"
    log.write_bytes(lines(1, 2))
    await first_run(log, state, 3)
    backup = tmp_path / "events-2026-12-04T10-00-00.000.log"
    os.rename(log, backup)
    backup.unlink()  # read to its end, then deleted: its inode is free for the next file
    log.write_bytes(lines(3, 4))  # same size, same first 256 bytes, likely the same inode
    os.rename(log, tmp_path / "events-2026-12-04T10-00-05.000.log")
    log.write_bytes(lines(5, 6))
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    await run_until(source, pipeline, 18)
    assert total(pipeline) == 18 and source.stats.read == 4
    assert source.metrics.bytes_lost[source.spec] == 0  # it had been read to its end


async def test_checkpointed_file_compressed_while_down_is_resumed_inside_the_gzip(tmp_path: Path) -> None:
    log, state = tmp_path / "events.log", tmp_path / "state"
    log.write_bytes(lines(1, 2))
    await first_run(log, state, 3)
    append(log, lines(4, 8))
    backup = tmp_path / "events-2026-12-04T10-00-00.000.log"
    os.rename(log, backup)
    with gzip.open(f"{backup}.gz", "wb") as packed:  # lumberjack `Compress: true`
        packed.write(backup.read_bytes())
    backup.unlink()
    log.write_bytes(lines(16))
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    await run_until(source, pipeline, 28)
    assert total(pipeline) == 28 and source.stats.read == 3


async def test_backups_compressed_with_zstd_are_read(tmp_path: Path) -> None:
    """Calico Enterprise compresses rotated flows.log files with zstd: resumed inside the .zst, and a
    later .zst backup read whole, in order."""
    import zstandard

    log, state = tmp_path / "flows.log", tmp_path / "state"
    log.write_bytes(lines(1, 2))
    await first_run(log, state, 3)
    append(log, lines(4))
    first = tmp_path / "flows-2026-12-04T10-00-00.000.log"
    os.rename(log, first)
    log.write_bytes(lines(8, 16))
    second = tmp_path / "flows-2026-12-04T10-05-00.000.log"
    os.rename(log, second)
    for backup in (first, second):
        Path(f"{backup}.zst").write_bytes(zstandard.ZstdCompressor().compress(backup.read_bytes()))
        backup.unlink()
    log.write_bytes(lines(32))
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    await run_until(source, pipeline, 60)
    assert total(pipeline) == 60 and source.stats.read == 4


async def test_logrotate_numbered_backups_shift_and_compress_while_down(tmp_path: Path) -> None:
    log, state = tmp_path / "flows.log", tmp_path / "state"
    log.write_bytes(lines(1))
    await first_run(log, state, 1)
    append(log, lines(2))
    os.rename(log, tmp_path / "flows.log.1")  # first rotation
    log.write_bytes(lines(4))
    os.rename(tmp_path / "flows.log.1", tmp_path / "flows.log.2")  # second rotation: names shift
    os.rename(log, tmp_path / "flows.log.1")
    with gzip.open(tmp_path / "flows.log.2.gz", "wb") as packed:  # `compress` + `delaycompress`
        packed.write((tmp_path / "flows.log.2").read_bytes())
    (tmp_path / "flows.log.2").unlink()
    log.write_bytes(lines(8))
    assert [Path(c.path).name for c in rotation_chain(str(log))] == ["flows.log.2.gz", "flows.log.1", "flows.log"]
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    await run_until(source, pipeline, 14)
    assert total(pipeline) == 14 and source.stats.read == 3


async def test_deleted_backups_are_logged_and_counted_as_bytes_lost(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    log, state = tmp_path / "events.log", tmp_path / "state"
    log.write_bytes(lines(1))
    await first_run(log, state, 1)
    unread = lines(2, 4)
    append(log, unread)
    os.rename(log, tmp_path / "events-2026-12-04T10-00-00.000.log")
    log.write_bytes(lines(8))
    os.rename(log, tmp_path / "events-2026-12-04T10-00-05.000.log")
    log.write_bytes(lines(16))
    (tmp_path / "events-2026-12-04T10-00-00.000.log").unlink()  # MaxBackups removed the oldest
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    with caplog.at_level(logging.WARNING):
        await run_until(source, pipeline, 24)
    assert total(pipeline) == 24 and source.stats.read == 2
    # The checkpoint knew the file's size when it was saved: the lines appended later are not in it.
    assert source.metrics.bytes_lost[source.spec] == 0
    assert "is gone or was replaced" in caplog.text
    text = pipeline.render().decode()
    assert f'netpol_exporter_source_bytes_lost_total{{source="{source.spec}"}} 0' in text


async def test_bytes_not_read_before_the_file_was_deleted_are_counted(tmp_path: Path) -> None:
    log, state = tmp_path / "events.log", tmp_path / "state"
    log.write_bytes(lines(1))
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    async with Running(source):
        await until(lambda: total(pipeline) == 1)
        append(log, calico_line(2)[:40])  # a partial line: the checkpoint's offset stays before it
        await until(lambda: source.stats.read == 1 and source.metrics.backlog_bytes[source.spec] == 0)
        await asyncio.sleep(0.1)
    os.rename(log, tmp_path / "events-2026-12-04T10-00-00.000.log")
    log.write_bytes(lines(8))
    (tmp_path / "events-2026-12-04T10-00-00.000.log").unlink()
    again = Pipeline()
    resumed = follower(log, again, state)
    await run_until(resumed, again, 8)
    assert total(again) == 8 and resumed.metrics.bytes_lost[resumed.spec] == 40


async def test_two_rotations_between_polls_read_the_middle_file(tmp_path: Path) -> None:
    log, state = tmp_path / "events.log", tmp_path / "state"
    log.write_bytes(lines(1))
    pipeline = Pipeline()
    source = follower(log, pipeline, state, poll_interval_seconds=0.5)
    async with Running(source):
        await until(lambda: total(pipeline) == 1)
        os.rename(log, tmp_path / "events-2026-12-04T10-00-00.000.log")
        log.write_bytes(lines(2))
        os.rename(log, tmp_path / "events-2026-12-04T10-00-05.000.log")
        log.write_bytes(lines(4))
        await until(lambda: total(pipeline) == 7, what="middle file and new file")
        await asyncio.sleep(0.6)
    assert total(pipeline) == 7 and source.stats.read == 3


class LumberjackWriter:
    """Writes lines like lumberjack: rotate by size to `<stem>-<UTC time><ext>`, gzip every other backup."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path, self.max_bytes = path, max_bytes
        self.written = 0.0  # packets written
        self.rotations = 0
        self.clock = 0

    def write(self, packets: int) -> None:
        line = calico_line(packets)
        if self.path.exists() and self.path.stat().st_size + len(line) > self.max_bytes:
            self.clock += 1
            backup = self.path.with_name(f"events-2026-12-04T10-{self.clock // 60:02d}-{self.clock % 60:02d}.000.log")
            os.rename(self.path, backup)
            self.rotations += 1
            if self.rotations % 2:
                with gzip.open(f"{backup}.gz", "wb") as packed:
                    packed.write(backup.read_bytes())
                backup.unlink()
        append(self.path, line)
        self.written += packets


async def test_repeated_restarts_across_busy_rotations_count_every_line_once(tmp_path: Path) -> None:
    """Five stop/start cycles, each down across several size rotations: the totals are exact."""
    log, state = tmp_path / "events.log", tmp_path / "state"
    writer = LumberjackWriter(log, max_bytes=4_000)
    pipeline = Pipeline()  # kept across restarts: its totals sum every run
    packets = iter(range(1, 10**9))
    log.write_bytes(b"")
    for _cycle in range(5):
        source = follower(log, pipeline, state)
        async with Running(source):
            for _ in range(40):  # written while running, rotating every ~8 lines
                writer.write(next(packets))  # distinct lines, as real events (timestamps)
                await asyncio.sleep(0.002)
            await until(lambda: total(pipeline) == writer.written, timeout=10, what="running catch-up")
        for _ in range(60):  # written while down: several rotations, half of them compressed
            writer.write(next(packets))  # distinct lines, as real events (timestamps)
    source = follower(log, pipeline, state)
    await run_until(source, pipeline, writer.written)
    assert writer.rotations >= 10
    assert total(pipeline) == writer.written and source.stats.invalid == 0


async def test_a_damaged_compressed_backup_is_read_as_far_as_it_goes(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    log, state = tmp_path / "events.log", tmp_path / "state"
    log.write_bytes(lines(1))
    await first_run(log, state, 1)
    append(log, lines(2, 4))
    backup = tmp_path / "events-2026-12-04T10-00-00.000.log"
    os.rename(log, backup)
    packed = gzip.compress(backup.read_bytes())
    Path(f"{backup}.gz").write_bytes(packed[:-12])  # the end of the stream is missing
    backup.unlink()
    log.write_bytes(lines(8))
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    with caplog.at_level(logging.ERROR):
        await run_until(source, pipeline, 8)
    # the line before the damage counts, the one cut by it is invalid, then the files after it are read
    assert total(pipeline) == 10 and source.stats.invalid == 1 and "cannot read" in caplog.text


async def test_a_backup_being_compressed_is_read_once(tmp_path: Path) -> None:
    """lumberjack writes `<backup>.gz`, then removes `<backup>`: for a moment both exist."""
    log, state = tmp_path / "events.log", tmp_path / "state"
    log.write_bytes(lines(1))
    await first_run(log, state, 1)
    append(log, lines(2))
    backup = tmp_path / "events-2026-12-04T10-00-00.000.log"
    os.rename(log, backup)
    with gzip.open(f"{backup}.gz", "wb") as packed:
        packed.write(backup.read_bytes())
    log.write_bytes(lines(4))
    assert [Path(c.path).name for c in rotation_chain(str(log))] == [backup.name, log.name]
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    await run_until(source, pipeline, 6)
    backup.unlink()  # the compression finishes while the source follows PATH
    append(log, lines(8))
    async with Running(source):
        await until(lambda: total(pipeline) == 14)
        await asyncio.sleep(0.2)
    assert total(pipeline) == 14 and source.stats.read == 3


async def test_copytruncate_while_down_resumes_in_the_copy(tmp_path: Path) -> None:
    log, state = tmp_path / "flows.log", tmp_path / "state"
    log.write_bytes(lines(1, 2))
    await first_run(log, state, 3)
    append(log, lines(4))
    (tmp_path / "flows.log.1").write_bytes(log.read_bytes())  # logrotate copytruncate: copy, then truncate
    with open(log, "r+b") as out:
        out.truncate(0)
    append(log, lines(8, 16))
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    await run_until(source, pipeline, 28)
    assert total(pipeline) == 28 and source.stats.read == 3


async def test_a_backup_that_is_not_what_its_name_says_is_skipped(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    log, state = tmp_path / "events.log", tmp_path / "state"
    log.write_bytes(lines(1))
    await first_run(log, state, 1)
    append(log, lines(2))
    os.rename(log, tmp_path / "events-2026-12-04T10-00-00.000.log")
    (tmp_path / "events-2026-12-04T10-00-05.000.log.gz").write_bytes(b"not gzip at all\n")
    log.write_bytes(lines(4))
    pipeline = Pipeline()
    source = follower(log, pipeline, state)
    with caplog.at_level(logging.ERROR):
        await run_until(source, pipeline, 6)
    assert total(pipeline) == 6 and "cannot read" in caplog.text
