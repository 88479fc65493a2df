"""`hubble-stdin`, `calico-stdin`: lines from standard input (`hubble observe -f -o jsonpb | ...`).

A daemon thread does the blocking reads and hands chunks over through a small bounded queue, so a
slow pipeline pushes back on the writer (the pipe fills) instead of growing memory. EOF → `stopped`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import os
import sys
import threading
from collections.abc import Callable
from functools import partial
from typing import BinaryIO

from exporter.pipeline import Pipeline
from exporter.sources.base import Source
from exporter.sources.lines import LineSplitter
from exporter.sources.util import until_stopped

log = logging.getLogger("netpol_exporter.sources.stdin")
CHUNK_BYTES = 1 << 20
QUEUE_CHUNKS = 4
BATCH_LINES = 2000
MAX_LINE_BYTES = 1 << 20


class StdinSource(Source):
    def __init__(self, spec: str, pipeline: Pipeline, fmt: str, stream: BinaryIO | None = None) -> None:
        self.format = fmt
        super().__init__(spec, pipeline)
        self.stream = stream if stream is not None else sys.stdin.buffer
        self._splitter = LineSplitter(MAX_LINE_BYTES)
        self._lineno = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.set_state("running")
        await until_stopped(stop, self._pump())
        if self.status.state != "failed":
            self.set_state("stopped", "end of input" if not stop.is_set() else "")

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue(QUEUE_CHUNKS)
        thread = threading.Thread(target=self._reader, args=(loop, queue), name=f"reader {self.spec}",
                                  daemon=True)
        thread.start()
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                log.error("%s: read error: %s", self.spec, item)
                self.set_state("failed", f"read error: {item}")
                return
            if not item:
                await self._ingest(self._splitter.flush())
                return
            await self._ingest(self._splitter.feed(item))

    def _read_function(self) -> Callable[[int], bytes]:
        """Unbuffered os.read on the descriptor when there is one: a daemon thread blocked inside a
        buffered reader aborts the interpreter at exit (`_enter_buffered_busy`) when data is flowing."""
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return getattr(self.stream, "read1", self.stream.read)
        return partial(os.read, fd)

    def _reader(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | BaseException]) -> None:
        read = self._read_function()
        while True:
            try:
                chunk: bytes | BaseException = read(CHUNK_BYTES)
            except (OSError, ValueError) as exc:
                chunk = exc
            put = queue.put(chunk)
            try:
                asyncio.run_coroutine_threadsafe(put, loop).result()
            except RuntimeError:  # the loop is closed
                put.close()
                return
            except (asyncio.CancelledError, concurrent.futures.CancelledError):
                return  # the source was stopped
            if not chunk or isinstance(chunk, BaseException):
                return

    async def _ingest(self, lines: list[bytes]) -> None:
        for i in range(0, len(lines), BATCH_LINES):
            batch = lines[i:i + BATCH_LINES]
            self.pipeline.ingest(self.stats, batch, self._lineno + 1, "<stdin>")
            self._lineno += len(batch)
            await asyncio.sleep(0)
