"""A followed file's rotated backups, oldest first, and how to tell which of them was read last.

Backup names recognised beside `PATH` (`<stem><ext>`):
- lumberjack (Cilium's Hubble exporter, and Calico Felix's flow-log file, which writes `flows.log` through
  lumberjack): `<stem>-<UTC 2006-01-02T15-04-05.000><ext>`, optionally `.gz` (or `.zst`: Calico Enterprise
  compresses its rotated flow logs with zstd in newer releases);
- logrotate: `<name>.N` (higher N is older) and `dateext` `<name>-YYYYMMDD[...]`, optionally `.gz`, `.bz2`,
  `.xz`, `.zst`.
Files are identified by device+inode; content fingerprints (of the first bytes, and of SAMPLES windows
spread over everything read so far, decompressed; a CRC-32 of every byte for a compressed backup being
read) confirm it where an inode may have been reused, and find a backup that was compressed or copied
(copytruncate).
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zstandard

FINGERPRINT_BYTES = 256
SAMPLES, SAMPLE_BYTES = 16, 64  # windows spread over the bytes read, the last one ending at the offset
# A fingerprint over fewer bytes than this is too weak to identify a file without its inode.
MIN_FINGERPRINT_BYTES = 64
OPENERS: dict[str, Callable[[str], io.BufferedIOBase]] = {
    ".gz": lambda name: gzip.open(name, "rb"),  # noqa: SIM115 - the caller closes the stream
    ".bz2": lambda name: bz2.open(name, "rb"),  # noqa: SIM115
    ".xz": lambda name: lzma.open(name, "rb"),  # noqa: SIM115
    ".zst": lambda name: io.BufferedReader(zstandard.open(name, "rb")),  # Calico Enterprise's compressed flow logs
}


def read_up_to(stream: io.BufferedIOBase, size: int) -> bytes:
    """Up to `size` bytes: fewer at the end, or where a damaged compressed stream stops (read1, so the
    bytes before the damage are not lost with the exception)."""
    parts = []
    while size > 0:
        try:
            data = stream.read1(min(size, 1 << 20))
        except (OSError, EOFError, ValueError, lzma.LZMAError, zstandard.ZstdError):
            break
        if not data:
            break
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def fingerprint(head: bytes) -> str:
    return hashlib.sha256(head[:FINGERPRINT_BYTES]).hexdigest()[:16]


def sample_windows(offset: int) -> list[tuple[int, int]]:
    """(start, length) of the sampled windows of the first `offset` bytes, ascending, not overlapping."""
    starts = sorted({offset * i // SAMPLES for i in range(SAMPLES)} | {max(0, offset - SAMPLE_BYTES)})
    windows, end = [], 0
    for start in starts:
        start = max(start, end)
        stop = min(start + SAMPLE_BYTES, offset)
        if stop > start:
            windows.append((start, stop - start))
            end = stop
    return windows


def samples_print(read_at: Callable[[int, int], bytes], offset: int) -> str:
    """The fingerprint of the sampled windows, read with `read_at(start, length)`."""
    digest = hashlib.sha256()
    for start, length in sample_windows(offset):
        digest.update(read_at(start, length))
    return digest.hexdigest()[:16]


def fd_samples(fd: int, offset: int) -> str:
    """samples_print of a plain file's first `offset` bytes."""
    return samples_print(lambda start, length: os.pread(fd, length, start), offset)


def crc_prefix(stream: io.BufferedIOBase, length: int, chunk: int = 1 << 20) -> tuple[int, int]:
    """(CRC-32, bytes read) of the stream's next `length` bytes: fewer read when it ends before."""
    crc, remaining = 0, length
    while remaining > 0:
        data = read_up_to(stream, min(remaining, chunk))
        if not data:
            break
        crc = zlib.crc32(data, crc)
        remaining -= len(data)
    return crc, length - remaining


@dataclass(frozen=True)
class Candidate:
    """A file of the rotation chain: PATH itself or one of its backups."""

    path: str
    dev: int
    ino: int
    size: int  # on disk (compressed size for a compressed backup)
    mtime_ns: int
    compression: str  # "" or a key of OPENERS
    order: tuple[int, str]  # sorts backups oldest first

    def open_stream(self) -> io.BufferedIOBase:
        """A decompressing reader (compressed backups only)."""
        return OPENERS[self.compression](self.path)

    def head(self, length: int) -> bytes:
        """The first `length` bytes of the content (decompressed)."""
        with self._open() as stream:
            return read_up_to(stream, min(length, FINGERPRINT_BYTES))

    def _open(self) -> io.BufferedIOBase:
        return self.open_stream() if self.compression else open(self.path, "rb")

    def crc(self, offset: int) -> int | None:
        """CRC-32 of the first `offset` bytes of the content (decompressed); None when it is shorter."""
        with self._open() as stream:
            crc, read = crc_prefix(stream, offset)
        return crc if read == offset else None

    def samples(self, offset: int) -> str | None:
        """samples_print of the first `offset` bytes of the content; None when it is shorter."""
        if not self.compression:
            with open(self.path, "rb") as plain:
                if os.fstat(plain.fileno()).st_size < offset:
                    return None
                return fd_samples(plain.fileno(), offset)
        with self.open_stream() as stream:
            position = 0

            def read_at(start: int, length: int) -> bytes:  # ascending, not overlapping: read on
                nonlocal position
                while position < start:
                    skipped = len(read_up_to(stream, start - position))
                    if not skipped:
                        raise EOFError
                    position += skipped
                data = read_up_to(stream, length)
                position += len(data)
                if len(data) < length:
                    raise EOFError
                return data

            try:
                return samples_print(read_at, offset)
            except EOFError:
                return None


def _patterns(path: str) -> list[tuple[re.Pattern[str], Callable[[str], tuple[int, str]]]]:
    name = os.path.basename(path)
    stem, ext = os.path.splitext(name)
    packed = r"(\.gz|\.bz2|\.xz|\.zst)?"
    return [
        (re.compile(rf"{re.escape(stem)}-(\d{{4}}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{{3}}){re.escape(ext)}{packed}"),
         lambda value: (0, value)),
        (re.compile(rf"{re.escape(name)}\.(\d{{1,6}}){packed}"),
         lambda value: (1, f"{999_999 - int(value):06d}")),
        (re.compile(rf"{re.escape(name)}-(\d{{8}}[\d-]*){packed}"), lambda value: (2, value)),
    ]


def rotation_chain(path: str) -> list[Candidate]:
    """PATH's backups oldest first, then PATH itself (when it exists)."""
    directory = os.path.dirname(path) or "."
    patterns = _patterns(path)
    found: list[Candidate] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        entries = []
    for entry in entries:
        for pattern, order in patterns:
            match = pattern.fullmatch(entry.name)
            if match is None:
                continue
            candidate = _candidate(entry.path, order(match.group(1)), match.group(2) or "")
            if candidate is not None:
                found.append(candidate)
            break
    # A backup being compressed exists twice for a moment (lumberjack, logrotate): the plain file is the
    # one to read; its compressed copy, still being written, has the same content.
    plain = {c.path for c in found if not c.compression}
    found = [c for c in found if not c.compression or c.path[:-len(c.compression)] not in plain]
    found.sort(key=lambda c: (c.order, c.mtime_ns))
    current = _candidate(path, (9, ""), "")
    if current is not None:
        found.append(current)
    return found


def _candidate(path: str, order: tuple[int, str], compression: str) -> Candidate | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return Candidate(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, compression, order)


@dataclass(frozen=True)
class FileIdentity:
    """What a checkpoint (or the file just finished) says about a file, to find it again in the chain."""

    dev: int
    ino: int
    offset: int  # bytes of its content already read
    head: str  # fingerprint of its first min(offset, FINGERPRINT_BYTES) bytes
    mtime_ns: int  # when it was last seen written (0: unknown)
    samples: str = ""  # samples_print of the bytes before offset ("": not recorded)
    crc: int | None = None  # CRC-32 of the bytes before offset (a compressed backup; None: not recorded)

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> FileIdentity:
        crc = saved.get("crc")
        return cls(int(saved["dev"]), int(saved["ino"]), int(saved["offset"]), str(saved.get("head", "")),
                   int(saved.get("mtime_ns", 0)), str(saved.get("samples", "")), None if crc is None else int(crc))


def _same_content(candidate: Candidate, want: FileIdentity) -> bool:
    if want.offset == 0:  # nothing read: nothing to compare (locate needs the inode then)
        return True
    if not candidate.compression and candidate.size < want.offset:
        return False
    try:
        if fingerprint(candidate.head(want.offset)) != want.head:
            return False
        if want.samples:
            return candidate.samples(want.offset) == want.samples
        return want.crc is None or candidate.crc(want.offset) == want.crc
    except (OSError, EOFError, ValueError, lzma.LZMAError, zstandard.ZstdError):
        return False


def locate(chain: list[Candidate], want: FileIdentity) -> int | None:
    """The index of the file `want` describes: same inode and content first, else same content only
    (compressed or copied) when the fingerprint covers enough bytes to mean something."""
    for index, candidate in enumerate(chain):
        if (candidate.dev, candidate.ino) == (want.dev, want.ino) and _same_content(candidate, want):
            return index
    if min(want.offset, FINGERPRINT_BYTES) < MIN_FINGERPRINT_BYTES:
        return None
    for index, candidate in enumerate(chain):
        if (candidate.dev, candidate.ino) != (want.dev, want.ino) and _same_content(candidate, want):
            return index
    return None


def successors(chain: list[Candidate], done: FileIdentity) -> list[Candidate]:
    """The files written after `done`, oldest first. When `done` is no longer in the chain (deleted), every
    file last written at or after `done` was; with no record of when `done` was written, only PATH."""
    index = locate(chain, done)
    if index is not None:
        return chain[index + 1:]
    if done.mtime_ns:
        return [c for c in chain if c.mtime_ns >= done.mtime_ns]
    return chain[-1:] if chain and chain[-1].order[0] == 9 else []
