"""Splitting a byte stream into complete lines with a bounded partial-line buffer."""

from __future__ import annotations


class LineSplitter:
    """Feeds chunks, yields complete lines (without `\\n`); keeps the trailing partial line.

    A partial line longer than `max_line_bytes` is dropped (it counts as one overlong line) and the
    rest of that line is skipped up to its newline, so memory stays bounded.
    """

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self.partial = b""
        self.skipping = False  # inside an overlong line: discard up to the next newline
        self.overlong = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        if self.skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                return []
            chunk = chunk[nl + 1:]
            self.skipping = False
        data = self.partial + chunk if self.partial else chunk
        last = data.rfind(b"\n")
        if last < 0:
            self.partial = data
            lines: list[bytes] = []
        else:
            lines = data[:last].split(b"\n")
            self.partial = data[last + 1:]
        if len(self.partial) > self.max_line_bytes:
            self.partial = b""
            self.skipping = True
            self.overlong += 1
        return lines

    def flush(self) -> list[bytes]:
        """The partial line as a last line (the stream ended without a final newline)."""
        rest, self.partial, self.skipping = self.partial, b"", False
        return [rest] if rest.strip() else []

    def reset(self) -> None:
        self.partial, self.skipping = b"", False
