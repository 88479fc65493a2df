"""`hubble-file:PATH`, `calico-file:PATH`: follow a file like `tail -F`, with an exact checkpoint.

- New lines are read as they are written, in bounded chunks, and fed to Pipeline.ingest in batches
  (the event loop runs between batches). A partial last line waits for its newline.
- Rotation by rename (Cilium's exporter, Felix): the renamed file is read to its end, then the new
  file at PATH from its beginning. Truncation (copytruncate): read again from the start. A file that
  does not exist (yet), or was deleted: state `waiting` until it appears.
- The checkpoint holds the file's device/inode, a fingerprint of its first bytes, the offset just after
  the last line fully ingested, its size and modification time. On restart the file is found again among
  PATH and its rotated backups (exporter.sources.rotation: lumberjack/Felix and logrotate names, plain or
  compressed), resumed at that offset, and every backup written after it is read, oldest first, before
  PATH. The same chain is followed at run time, so several rotations between two polls lose nothing. Bytes
  that are truly gone (the checkpointed file deleted) are logged and counted in
  `netpol_exporter_source_bytes_lost_total`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import time
import zlib
from typing import Any

from exporter.pipeline import Pipeline
from exporter.sources.base import Source
from exporter.sources.checkpoint import Checkpoint
from exporter.sources.lines import LineSplitter
from exporter.sources.metrics import source_metrics
from exporter.sources.options import FileOptions
from exporter.sources.rotation import (
    FINGERPRINT_BYTES,
    Candidate,
    FileIdentity,
    crc_prefix,
    fd_samples,
    fingerprint,
    locate,
    rotation_chain,
    successors,
)
from exporter.sources.util import wait_stop

log = logging.getLogger("netpol_exporter.sources.file")
OPEN_RETRIES = 3  # a successor renamed between listing and opening: list again
_EMPTY_PRINT = fingerprint(b"")  # the head fingerprint at offset 0


class FileSource(Source):
    waiting_log_interval_seconds = 60.0  # a file that is not there is logged at start, then this often

    def __init__(self, spec: str, pipeline: Pipeline, path: str, fmt: str, options: FileOptions | None = None,
                 state_dir: str | None = None) -> None:
        self.format = fmt
        super().__init__(spec, pipeline)
        self.path = path
        self.opts = options or FileOptions()
        self.metrics = source_metrics(pipeline)
        self.metrics.backlog_bytes[spec] = 0
        self.metrics.bytes_lost.setdefault(spec, 0)
        self.checkpoint = Checkpoint(state_dir, spec, self.metrics) if state_dir else None
        if self.checkpoint:
            self.metrics.checkpoint_errors.setdefault(spec, 0)
        self._splitter = LineSplitter(self.opts.max_line_bytes)
        self._fd: int | None = None
        self._stream: io.BufferedIOBase | None = None  # a compressed backup being read (then _fd is None)
        self._head = b""  # the compressed backup's first bytes, decompressed (its fingerprint)
        self._stream_mtime_ns = 0
        self._id: tuple[int, int] = (0, 0)  # (st_dev, st_ino) of the open file
        self._pos = 0  # bytes read from the open file (decompressed for a compressed backup)
        self._crc = 0  # a compressed backup being read: CRC-32 of its bytes before the resume offset
        self._lineno = 0  # lines read from the open file
        self._where = path  # the open file's name, for error messages
        self._finishing = False  # the open file was rotated away: read it to its end, then its successor
        self._done: FileIdentity | None = None  # the file finished last: the next one to read follows it
        self._last_checkpoint = 0.0
        self._waiting_logged: float | None = None  # monotonic time of the last "waiting" log line

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def _is_open(self) -> bool:
        return self._fd is not None or self._stream is not None

    async def run(self, stop: asyncio.Event) -> None:
        self._resume()
        self._last_checkpoint = time.monotonic()
        try:
            while not stop.is_set():
                if not self._is_open and not self._open_next():
                    if not self.status.detail.startswith("cannot open"):
                        self.set_state("waiting", f"{self.path} does not exist (yet)")
                    self._log_waiting()
                    self._update_backlog()
                    await wait_stop(stop, self.opts.poll_interval_seconds)
                    continue
                if await self._read_to_end(stop):
                    continue
                if stop.is_set() or await self._check_file():
                    continue
                self._update_backlog()
                if time.monotonic() - self._last_checkpoint >= self.opts.checkpoint_interval_seconds:
                    await self._save_checkpoint_async()
                await wait_stop(stop, self.opts.poll_interval_seconds)
        finally:
            self.save_checkpoint()
        self.set_state("stopped")

    def _log_waiting(self) -> None:
        now = time.monotonic()
        if self._waiting_logged is None or now - self._waiting_logged >= self.waiting_log_interval_seconds:
            log.warning("%s: %s; waiting for it (state on /readyz and the landing page)", self.spec,
                        self.status.detail)
            self._waiting_logged = now

    async def close(self) -> None:
        self.save_checkpoint()
        self._close_fd()

    # -- reading -----------------------------------------------------------------------------------

    def _read_chunk(self) -> bytes:
        if self._stream is not None:  # read1: the bytes before a damaged part are returned first
            return self._stream.read1(self.opts.read_chunk_bytes)
        assert self._fd is not None
        return os.read(self._fd, self.opts.read_chunk_bytes)

    async def _read_to_end(self, stop: asyncio.Event) -> bool:
        """Read and ingest until EOF (or stop); True when anything was read."""
        got = False
        while not stop.is_set() and self._is_open:
            try:
                chunk = self._read_chunk()
            except (OSError, EOFError, ValueError) as exc:  # a damaged compressed backup ends early
                if self._stream is not None:
                    log.error("%s: cannot read %s past byte %d: %s; going on with the next file", self.spec,
                              self._where, self._pos, exc)
                    with contextlib.suppress(OSError, EOFError, ValueError):
                        self._stream.close()
                    self._stream = io.BytesIO()  # what could be read was read: finish it as it is
                    await self._finish_and_close("rotated")
                    return True
                log.error("%s: read error on %s: %s; reopening", self.spec, self._where, exc)
                self._close_fd()
                return got
            if not chunk:
                break
            got = True
            old_partial = self._splitter.partial
            old_offset = self._pos - len(old_partial)
            self._pos += len(chunk)
            if self.status.state != "running":
                self.set_state("running")
            before = self._splitter.overlong
            lines = self._splitter.feed(chunk)
            consumed = self._pos - len(self._splitter.partial) - old_offset
            if consumed > 0 and self._stream is not None:  # a partial line is consumed whole or not at all
                self._crc = zlib.crc32(memoryview(chunk)[:consumed - len(old_partial)],
                                       zlib.crc32(old_partial, self._crc))
            if self._splitter.overlong != before:
                self._count_overlong()
            await self._ingest(lines)
            self._update_backlog()
            if time.monotonic() - self._last_checkpoint >= self.opts.checkpoint_interval_seconds:
                await self._save_checkpoint_async()  # also while working through a long backlog
        return got

    async def _ingest(self, lines: list[bytes]) -> None:
        step = self.opts.batch_lines
        for i in range(0, len(lines), step):
            batch = lines[i:i + step]
            self.pipeline.ingest(self.stats, batch, self._lineno + 1, self._where)
            self._lineno += len(batch)
            await asyncio.sleep(0)

    def _count_overlong(self) -> None:
        self.stats.read += 1
        self.stats.invalid += 1
        log.warning("%s: %s: a line longer than %d bytes was discarded", self.spec, self._where,
                    self.opts.max_line_bytes)

    # -- rotation, truncation, deletion --------------------------------------------------------------

    async def _check_file(self) -> bool:
        """At EOF: switch files on rotation/truncation/deletion; True when the open file changed."""
        if self._finishing or self._stream is not None:
            await self._finish_and_close("rotated")
            return True
        assert self._fd is not None
        fst = os.fstat(self._fd)
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is None:
            if fst.st_nlink == 0:
                await self._finish_and_close("deleted")
                self.set_state("waiting", f"{self.path} was deleted; waiting for it to be recreated")
                return True
            return False  # renamed, the new file is not there yet: keep reading the old one
        if (st.st_dev, st.st_ino) != self._id:
            await self._finish_and_close("rotated")
            return True
        if fst.st_size < self._pos:
            log.info("%s: %s was truncated; reading it again from the start", self.spec, self.path)
            self._inc_reopen("truncated")
            os.lseek(self._fd, 0, os.SEEK_SET)
            self._pos = self._lineno = self._crc = 0
            self._splitter.reset()
            return True
        return False

    async def _finish_and_close(self, reason: str) -> None:
        """Read the old file to its very end (a last line without newline counts too), then close it;
        the next file to read is the one rotated after it (see _open_next)."""
        await self._read_to_end(asyncio.Event())
        last = self._splitter.partial
        await self._ingest(self._splitter.flush())
        self._crc = zlib.crc32(last, self._crc)
        log.info("%s: finished %s (%s)", self.spec, self._where, reason)
        self._inc_reopen(reason)
        self._done = self._identity()
        self.save_checkpoint()  # "this file is done": a restart must not read it again
        self._close_fd()

    def _inc_reopen(self, reason: str) -> None:
        self.metrics.inc(self.metrics.file_reopens, (self.spec, reason))

    # -- opening and resuming ----------------------------------------------------------------------

    def _open(self, name: str) -> bool:
        try:
            fd = os.open(name, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return False
        except OSError as exc:
            self.set_state("waiting", f"cannot open {name}: {exc.strerror or exc}")
            return False
        st = os.fstat(fd)
        self._fd, self._id, self._pos, self._lineno, self._where = fd, (st.st_dev, st.st_ino), 0, 0, name
        self._crc = 0
        self._finishing = False
        self._splitter.reset()
        return True

    def _open_candidate(self, candidate: Candidate) -> bool:
        """Open a file of the rotation chain from its start; False when it is gone or was replaced."""
        if not candidate.compression:
            if not self._open(candidate.path):
                return False
            if self._id != (candidate.dev, candidate.ino):
                self._close_fd()
                return False
            return True
        stream = None
        try:
            stream = candidate.open_stream()
            self._head = candidate.head(FINGERPRINT_BYTES)
        except (OSError, EOFError, ValueError) as exc:
            if stream is not None:
                stream.close()  # opened, but its head could not be read
            log.error("%s: cannot read the compressed backup %s: %s", self.spec, candidate.path, exc)
            return False
        self._stream, self._id, self._pos, self._lineno = stream, (candidate.dev, candidate.ino), 0, 0
        self._crc = 0
        self._stream_mtime_ns = candidate.mtime_ns
        self._where = candidate.path  # the callers set _finishing
        self._splitter.reset()
        return True

    def _open_path(self, from_end: bool) -> bool:
        if not self._open(self.path):
            return False
        if from_end:
            assert self._fd is not None
            self._seek(os.fstat(self._fd).st_size, 0)
        self.set_state("running")
        if self._waiting_logged is not None:
            log.info("%s: %s is there now; reading it", self.spec, self.path)
            self._waiting_logged = None
        return True

    def _open_next(self) -> bool:
        """Open the file to read now: the oldest file rotated after the last one finished, else PATH."""
        if self._done is None:
            return self._open_path(from_end=False)
        attempts = 0
        while attempts < OPEN_RETRIES:
            chain = rotation_chain(self.path)
            following = successors(chain, self._done)
            if not following:
                return False
            candidate = following[0]
            if self._open_candidate(candidate):
                self._finishing = candidate.path != self.path
                if self._finishing:
                    log.info("%s: reading %s, rotated before it was read to its end", self.spec, candidate.path)
                else:
                    self._done = None
                self.set_state("running")
                return True
            if candidate.path != self.path and os.path.exists(candidate.path):
                self._skip_unreadable(candidate)  # it would block every file after it
                continue
            attempts += 1  # gone or replaced meanwhile: list again
        return False

    def _skip_unreadable(self, candidate: Candidate) -> None:
        log.error("%s: cannot read the backup %s; its %d bytes are counted as lost", self.spec, candidate.path,
                  candidate.size)
        self.metrics.inc(self.metrics.bytes_lost, self.spec, candidate.size)
        self._done = FileIdentity(candidate.dev, candidate.ino, 0, _EMPTY_PRINT, candidate.mtime_ns)

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._stream is not None:
            with contextlib.suppress(OSError, EOFError, ValueError):
                self._stream.close()
            self._stream = None

    def _seek(self, offset: int, lineno: int) -> None:
        """Skip to `offset`; a compressed stream is read up to it (the CRC of those bytes is its identity)."""
        self._lineno = lineno
        if self._stream is None:
            assert self._fd is not None
            self._pos = os.lseek(self._fd, offset, os.SEEK_SET)
            return
        self._crc, self._pos = crc_prefix(self._stream, offset, self.opts.read_chunk_bytes)

    def _resume(self) -> None:
        self._close_fd()  # restarted after a failure: start over from the checkpoint
        self._done = None
        saved = self.checkpoint.load() if self.checkpoint else None
        if not saved or saved.get("path") != self.path:
            self._open_path(from_end=self.opts.start_at == "end")
            return
        try:
            want = FileIdentity.from_saved(saved)
            lineno, saved_size = int(saved.get("line", 0)), int(saved.get("size", want.offset))
        except (KeyError, TypeError, ValueError):
            log.warning("%s: checkpoint %s is incomplete; reading %s from the start", self.spec,
                        self.checkpoint.path if self.checkpoint else "", self.path)
            self._open_path(from_end=False)
            return
        chain = rotation_chain(self.path)
        index = locate(chain, want)
        if index is not None and self._open_candidate(chain[index]):
            candidate = chain[index]
            self._seek(want.offset, lineno)
            self._finishing = candidate.path != self.path
            later = len(chain) - index - 1
            log.info("%s: resuming %s at byte %d (line %d)%s", self.spec, candidate.path, want.offset, lineno,
                     f"; it was rotated: {later} file(s) written after it follow" if self._finishing else "")
            self.set_state("running")
            return
        lost = max(0, saved_size - want.offset)
        self.metrics.inc(self.metrics.bytes_lost, self.spec, lost)
        log.warning("%s: the file of the checkpoint (%s, inode %d) is gone or was replaced; %d bytes of it were "
                    "not read and are lost (more if whole backups were deleted); reading the files written "
                    "since, oldest first", self.spec, saved.get("file", self.path), want.ino, lost)
        self._done = want if want.mtime_ns else None

    # -- checkpoint and backlog --------------------------------------------------------------------

    def _head_print(self, offset: int) -> str:
        if self._stream is not None:
            return fingerprint(self._head[:offset])
        assert self._fd is not None
        return fingerprint(os.pread(self._fd, min(offset, FINGERPRINT_BYTES), 0))

    def _identity(self) -> FileIdentity:
        offset = self._pos - len(self._splitter.partial)
        mtime_ns = os.fstat(self._fd).st_mtime_ns if self._fd is not None else self._stream_mtime_ns
        if self._fd is not None:
            return FileIdentity(self._id[0], self._id[1], offset, self._head_print(offset), mtime_ns,
                                samples=fd_samples(self._fd, offset))
        return FileIdentity(self._id[0], self._id[1], offset, self._head_print(offset), mtime_ns, crc=self._crc)

    def position(self) -> dict[str, Any] | None:
        """The resume point: just after the last line fully ingested from the open file."""
        if not self._is_open:
            return None
        offset = self._pos - len(self._splitter.partial)
        data: dict[str, Any] = {"path": self.path, "file": self._where, "dev": self._id[0], "ino": self._id[1],
                                "offset": offset, "line": self._lineno, "head": self._head_print(offset)}
        if self._fd is not None:
            st = os.fstat(self._fd)
            data["size"], data["mtime_ns"] = st.st_size, st.st_mtime_ns
            data["samples"] = fd_samples(self._fd, offset)
        else:
            data["mtime_ns"], data["crc"] = self._stream_mtime_ns, self._crc
        return data

    def save_checkpoint(self) -> None:
        self._last_checkpoint = time.monotonic()
        if self.checkpoint is None:
            return
        data = self.position()
        if data is not None:
            self.checkpoint.save(data)

    async def _save_checkpoint_async(self) -> None:
        """The periodic save: its fsyncs run in a thread so a slow disk does not stall the event loop."""
        self._last_checkpoint = time.monotonic()
        data = self.position() if self.checkpoint else None
        if self.checkpoint is not None and data is not None:
            await asyncio.to_thread(self.checkpoint.save, data)

    def _update_backlog(self) -> None:
        backlog = 0
        if self._fd is not None:
            try:
                backlog = max(0, os.fstat(self._fd).st_size - self._pos)
            except OSError:
                backlog = 0
        self.metrics.backlog_bytes[self.spec] = backlog
        last = self.stats.last_event_time
        self.status.lag_seconds = max(0.0, time.time() - last) if backlog and last else 0.0

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["backlog_bytes"] = self.metrics.backlog_bytes.get(self.spec, 0)
        out["file"] = self._where if self._is_open else None
        return out
