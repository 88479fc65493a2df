"""`hubble-file:PATH`, `calico-file:PATH`: follow a file like `tail -F`, with an exact checkpoint.

- New lines are read as they are written, in bounded chunks, and fed to Pipeline.ingest in batches
  (the event loop runs between batches). A partial last line waits for its newline.
- Rotation by rename (Cilium's exporter, Felix): the renamed file is read to its end, then the new
  file at PATH from its beginning. Truncation (copytruncate): read again from the start. A file that
  does not exist (yet), or was deleted: state `waiting` until it appears.
- The checkpoint holds the file's device/inode, a fingerprint of its first bytes, and the offset just
  after the last line fully ingested. On restart: the same file resumes at that offset; a file rotated
  while we were down is found by its inode in PATH's directory, finished, then PATH is read from 0.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from typing import Any

from exporter.pipeline import Pipeline
from exporter.sources.base import Source
from exporter.sources.checkpoint import Checkpoint
from exporter.sources.lines import LineSplitter
from exporter.sources.metrics import source_metrics
from exporter.sources.options import FileOptions
from exporter.sources.util import wait_stop

log = logging.getLogger("netpol_exporter.sources.file")
FINGERPRINT_BYTES = 256


def _fingerprint(fd: int, limit: int) -> str:
    head = os.pread(fd, min(limit, FINGERPRINT_BYTES), 0)
    return hashlib.sha256(head).hexdigest()[:16]


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
        self.checkpoint = Checkpoint(state_dir, spec, self.metrics) if state_dir else None
        if self.checkpoint:
            self.metrics.checkpoint_errors.setdefault(spec, 0)
        self._splitter = LineSplitter(self.opts.max_line_bytes)
        self._fd: int | None = None
        self._id: tuple[int, int] = (0, 0)  # (st_dev, st_ino) of the open file
        self._pos = 0  # bytes read from the open file
        self._lineno = 0  # lines read from the open file
        self._where = path  # the open file's name, for error messages
        self._finishing = False  # the open file was rotated away: read it to its end, then open PATH
        self._last_checkpoint = 0.0
        self._waiting_logged: float | None = None  # monotonic time of the last "waiting" log line

    # -- lifecycle ---------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._resume()
        self._last_checkpoint = time.monotonic()
        try:
            while not stop.is_set():
                if self._fd is None and not self._open_path(from_end=False):
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

    async def _read_to_end(self, stop: asyncio.Event) -> bool:
        """Read and ingest until EOF (or stop); True when anything was read."""
        assert self._fd is not None
        got = False
        while not stop.is_set():
            try:
                chunk = os.read(self._fd, self.opts.read_chunk_bytes)
            except OSError as exc:
                log.error("%s: read error on %s: %s; reopening", self.spec, self._where, exc)
                self._close_fd()
                return got
            if not chunk:
                break
            got = True
            self._pos += len(chunk)
            if self.status.state != "running":
                self.set_state("running")
            before = self._splitter.overlong
            lines = self._splitter.feed(chunk)
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
        assert self._fd is not None
        fst = os.fstat(self._fd)
        if self._finishing:
            await self._finish_and_close("rotated")
            return True
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
            self._pos = self._lineno = 0
            self._splitter.reset()
            return True
        return False

    async def _finish_and_close(self, reason: str) -> None:
        """Read the old file to its very end (a last line without newline counts too), then close it."""
        stop = asyncio.Event()
        await self._read_to_end(stop)
        await self._ingest(self._splitter.flush())
        log.info("%s: finished %s (%s)", self.spec, self._where, reason)
        self._inc_reopen(reason)
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
        self._finishing = False
        self._splitter.reset()
        return True

    def _open_path(self, from_end: bool) -> bool:
        if not self._open(self.path):
            return False
        if from_end:
            assert self._fd is not None
            self._pos = os.lseek(self._fd, 0, os.SEEK_END)
        self.set_state("running")
        if self._waiting_logged is not None:
            log.info("%s: %s is there now; reading it", self.spec, self.path)
            self._waiting_logged = None
        return True

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _seek(self, offset: int, lineno: int) -> None:
        assert self._fd is not None
        self._pos = os.lseek(self._fd, offset, os.SEEK_SET)
        self._lineno = lineno

    def _resume(self) -> None:
        saved = self.checkpoint.load() if self.checkpoint else None
        if not saved or saved.get("path") != self.path:
            self._open_path(from_end=self.opts.start_at == "end")
            return
        try:
            want = (int(saved["dev"]), int(saved["ino"]))
            offset, lineno, print_ = int(saved["offset"]), int(saved.get("line", 0)), str(saved.get("head", ""))
        except (KeyError, TypeError, ValueError):
            log.warning("%s: checkpoint %s is incomplete; reading %s from the start", self.spec,
                        self.checkpoint.path if self.checkpoint else "", self.path)
            self._open_path(from_end=False)
            return
        candidate = self._find_by_id(want)
        if candidate is not None and self._open(candidate):
            assert self._fd is not None
            size = os.fstat(self._fd).st_size
            if size >= offset and _fingerprint(self._fd, offset) == print_:
                self._seek(offset, lineno)
                self._finishing = candidate != self.path
                log.info("%s: resuming %s at byte %d (line %d)%s", self.spec, candidate, offset, lineno,
                         "; it was rotated, PATH follows" if self._finishing else "")
                self.set_state("running")
                return
            log.warning("%s: %s is shorter than the checkpoint or was replaced; reading it from the start",
                        self.spec, candidate)
            if candidate == self.path:
                self.set_state("running")
                return
            self._close_fd()
        else:
            log.warning("%s: the file of the checkpoint (inode %d) is gone (rotated and removed or compressed); "
                        "reading %s from the start", self.spec, want[1], self.path)
        self._open_path(from_end=False)

    def _find_by_id(self, want: tuple[int, int]) -> str | None:
        """PATH itself, else a file in PATH's directory with that device/inode (a rotated backup)."""
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == want:
                return self.path
        except FileNotFoundError:
            pass
        directory = os.path.dirname(self.path) or "."
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    try:
                        est = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if (est.st_dev, est.st_ino) == want and entry.is_file(follow_symlinks=False):
                        return entry.path
        except OSError:
            return None
        return None

    # -- checkpoint and backlog --------------------------------------------------------------------

    def position(self) -> dict[str, Any] | None:
        """The resume point: just after the last line fully ingested from the open file."""
        if self._fd is None:
            return None
        offset = self._pos - len(self._splitter.partial)
        return {"path": self.path, "file": self._where, "dev": self._id[0], "ino": self._id[1],
                "offset": offset, "line": self._lineno, "head": _fingerprint(self._fd, offset)}

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
        out["file"] = self._where if self._fd is not None else None
        return out
