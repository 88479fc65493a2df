"""`calico-goldmane-push:HOST:PORT`: an HTTP receiver for Goldmane's emitter (Calico OSS 3.30+ `PUSH_URL`).

Goldmane POSTs `application/x-ndjson` batches of `goldmane.Flow` (Go encoding/json) and retries any
answer but 200 (up to 15 times). So a batch's valid lines are counted exactly once:
- the whole body is received and every line decoded (Pipeline.decode_batch, in chunks, the event loop
  running in between) before any of it is counted; then it is counted in one synchronous step and
  answered 200 — also when some lines were invalid (a line nested too deeply, invalid UTF-8 in a
  field...: counted in `netpol_exporter_events_invalid_total` and logged with their line number; the
  JSON answer lists how many): retrying cannot fix a bad line;
- every other answer comes before anything of the request was counted, so a retry never double counts:
  400 (gzip/deflate body that does not inflate), 408 (body not received within `body_timeout_seconds`),
  413 (above `max_body_bytes`, compressed or inflated: inflating stops at the limit), 415 (content type
  or encoding not NDJSON/JSON/text, gzip/deflate/identity), 503 (no slot of `max_concurrent_requests`
  free within `body_timeout_seconds`, more than MAX_WAITING_REQUESTS waiting, or `max_buffered_bytes`
  held by all requests together).
Connections without a complete request header for `idle_timeout_seconds` are closed; a refused body is
not drained. Any path is accepted (PUSH_URL may carry one); GET on `/` answers a short description.
Optional HTTPS and client-certificate verification (`tls_cert_file`, `tls_key_file`, `client_ca_file`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import zlib
from collections.abc import Iterator
from typing import Any

from aiohttp import ClientPayloadError, web

from exporter.pipeline import Pipeline
from exporter.service.http import runner_options
from exporter.sources.base import Source
from exporter.sources.metrics import source_metrics
from exporter.sources.options import GoldmanePushOptions

log = logging.getLogger("netpol_exporter.sources.goldmane_push")
ACCEPTED_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                            "application/json", "text/plain", "application/octet-stream", ""})
# Content-Encoding → zlib window bits (gzip header, zlib header)
ENCODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
INFLATE_STEP = 1 << 20  # inflate at most this much per call: stopping at the limit costs no more
MAX_WAITING_REQUESTS = 64  # beyond, a request is answered 503 at once
LINE_OVERHEAD = 64  # memory a held line costs beyond its bytes (object header, list slot): many tiny lines


class Refused(Exception):
    """A request answered before anything of it was counted."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Inflater:
    """Incremental gzip/deflate inflating in bounded steps; further gzip members are read too (as Go does)."""

    def __init__(self, wbits: int) -> None:
        self.wbits = wbits
        self._z = zlib.decompressobj(wbits)

    @property
    def complete(self) -> bool:
        return self._z.eof

    def feed(self, raw: bytes) -> Iterator[bytes]:
        data = raw
        while data:
            if self._z.eof:
                self._z = zlib.decompressobj(self.wbits)
            piece = self._z.decompress(data, INFLATE_STEP)
            data = self._z.unused_data if self._z.eof else self._z.unconsumed_tail
            if piece:
                yield piece


class GoldmanePushSource(Source):
    format = "goldmane"

    def __init__(self, spec: str, pipeline: Pipeline, host: str, port: int,
                 options: GoldmanePushOptions | None = None) -> None:
        super().__init__(spec, pipeline)
        self.host, self.port = host, port
        self.opts = options or GoldmanePushOptions()
        self.metrics = source_metrics(pipeline)
        self.ssl_context = self._ssl_context()  # built now: an unreadable file is a startup error
        self.bound_port: int | None = None
        self._runner: web.AppRunner | None = None
        self._batches = 0
        self._active = 0  # requests whose body is being read or counted
        self._waiting = 0  # requests waiting for one of max_concurrent_requests slots
        self._slots: asyncio.Semaphore | None = None  # made in the running loop
        self.buffered = 0  # body bytes held by all requests together

    def _ssl_context(self) -> ssl.SSLContext | None:
        o = self.opts
        if not (o.tls_cert_file or o.tls_key_file or o.client_ca_file):
            return None
        if not (o.tls_cert_file and o.tls_key_file):
            raise ValueError(f"source {self.spec!r}: goldmane_push.tls_cert_file and tls_key_file are both needed "
                             "for HTTPS")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(o.tls_cert_file, o.tls_key_file)
            if o.client_ca_file:
                context.load_verify_locations(o.client_ca_file)
                context.verify_mode = ssl.CERT_REQUIRED
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"source {self.spec!r}: cannot load the push receiver's TLS files "
                             f"({o.tls_cert_file}, {o.tls_key_file}, {o.client_ca_file}): {exc}") from None
        return context

    async def run(self, stop: asyncio.Event) -> None:
        app = web.Application(client_max_size=self.opts.max_body_bytes)
        app.router.add_post("/{tail:.*}", self._handle_post)
        app.router.add_get("/", self._handle_get)
        # No transparent inflating (it would inflate past the limit), no draining of refused bodies,
        # and idle or header-less connections closed after idle_timeout_seconds.
        options = {**runner_options(), "keepalive_timeout": self.opts.idle_timeout_seconds}
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, auto_decompress=False, **options)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as exc:
            self.set_state("failed", f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}")
            log.error("%s: cannot listen on %s:%d: %s", self.spec, self.host, self.port, exc)
            await self._runner.cleanup()
            self._runner = None
            return
        sockets = [s for s in self._runner.addresses if isinstance(s, tuple)]
        self.bound_port = int(sockets[0][1]) if sockets else self.port
        scheme = "https" if self.ssl_context else "http"
        self.set_state("running", f"listening on {scheme}://{self.host}:{self.bound_port}")
        log.info("%s: receiving Goldmane pushes on %s://%s:%d", self.spec, scheme, self.host, self.bound_port)
        try:
            await stop.wait()
        finally:
            await self.close()
        self.set_state("stopped")

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _handle_get(self, request: web.Request) -> web.Response:
        return web.Response(text=f"netpol-exporter Goldmane push receiver ({self.spec}): POST NDJSON here\n")

    def _answer(self, status: int, body: dict[str, Any]) -> web.Response:
        self.metrics.inc(self.metrics.push_requests, (self.spec, str(status)))
        response = web.json_response(body, status=status)
        if status == 503:
            response.headers["Retry-After"] = "1"
        return response

    async def _handle_post(self, request: web.Request) -> web.Response:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.opts.max_concurrent_requests)
        if self._slots.locked() and self._waiting >= MAX_WAITING_REQUESTS:
            return self._refuse(request, Refused(503, f"busy: {self._waiting} pushes wait for a slot"))
        self._waiting += 1
        try:
            async with asyncio.timeout(self.opts.body_timeout_seconds):
                await self._slots.acquire()
        except TimeoutError:
            return self._refuse(request, Refused(503, f"busy: {self._active} pushes are being received"))
        finally:
            self._waiting -= 1
        try:
            return await self._handle_in_slot(request)
        finally:
            self._slots.release()

    async def _handle_in_slot(self, request: web.Request) -> web.Response:
        self._active += 1  # held until the batch is counted: bounds bodies and decoded records alike
        held = [0]
        try:
            try:
                lines = await self._receive(request, held)
            except Refused as refused:
                return self._refuse(request, refused)
            return await self._count(request, lines)
        finally:
            self._active -= 1
            self.buffered -= held[0]

    async def _count(self, request: web.Request, lines: list[bytes]) -> web.Response:
        self._batches += 1
        where = f"{self.spec} batch {self._batches}"
        step = self.opts.batch_lines
        commits = []
        for i in range(0, len(lines), step):  # decoding counts nothing: the event loop may run between
            commits.append(self.pipeline.decode_batch(self.stats, lines[i:i + step], i + 1, where))
            await asyncio.sleep(0)
        lines.clear()
        read = counted = invalid = 0
        for commit in commits:  # then the whole batch is counted in one synchronous step
            chunk_read, chunk_counted, chunk_invalid = commit()
            read, counted, invalid = read + chunk_read, counted + chunk_counted, invalid + chunk_invalid
        if invalid:
            log.warning("%s: %s from %s: %d of %d lines invalid (counted the rest)", self.spec, where,
                        request.remote, invalid, read)
        return self._answer(200, {"lines": read, "counted": counted, "invalid": invalid})

    def _refuse(self, request: web.Request, refused: Refused) -> web.Response:
        log.warning("%s: rejected a push from %s: %s", self.spec, request.remote, refused)
        return self._answer(refused.status, {"error": str(refused)})

    async def _receive(self, request: web.Request, held: list[int]) -> list[bytes]:
        """The body's lines, inflated and bounded; raises Refused (nothing counted yet)."""
        limit = self.opts.max_body_bytes
        content_type = request.content_type.lower()
        if content_type not in ACCEPTED_TYPES:
            raise Refused(415, f"unsupported content type {content_type!r}; expected application/x-ndjson")
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ENCODINGS and encoding not in ("identity", ""):
            raise Refused(415, f"unsupported content encoding {encoding!r}; expected gzip, deflate or none")
        if request.content_length is not None and request.content_length > limit:
            raise Refused(413, f"body larger than {limit} bytes")
        inflater = _Inflater(ENCODINGS[encoding]) if encoding in ENCODINGS else None
        lines: list[bytes] = []
        partial = bytearray()  # appended in place: a long line costs no quadratic copying
        received = inflated = 0
        try:
            async with asyncio.timeout(self.opts.body_timeout_seconds):
                while True:
                    raw = await request.content.readany()
                    if not raw:
                        break
                    received += len(raw)
                    if received > limit:
                        raise Refused(413, f"body larger than {limit} bytes")
                    pieces = self._inflate(inflater, raw, limit - inflated) if inflater else [raw]
                    for piece in pieces:
                        inflated += len(piece)  # within the limit: _inflate refuses beyond it
                        self._hold(len(piece) + LINE_OVERHEAD * piece.count(b"\n"), held)
                        cut = piece.rfind(b"\n")
                        if cut < 0:
                            partial += piece
                            continue
                        if partial:
                            partial += piece[:cut]
                            lines.extend(bytes(partial).split(b"\n"))
                        else:
                            lines.extend(piece[:cut].split(b"\n"))
                        partial = bytearray(piece[cut + 1:])
        except TimeoutError:
            raise Refused(408, f"body not received within {self.opts.body_timeout_seconds:g} s") from None
        except (ConnectionError, ClientPayloadError) as exc:  # the client left mid-body
            raise Refused(400, f"body cut short after {received} bytes: {exc}") from None
        if inflater is not None and not inflater.complete:
            raise Refused(400, f"{encoding} body ends before its end of stream")
        if partial:
            lines.append(bytes(partial))
        return lines

    def _inflate(self, inflater: _Inflater, raw: bytes, room: int) -> list[bytes]:
        """Inflate `raw`, stopping as soon as more than `room` bytes came out (413)."""
        out = []
        inflated = 0
        try:
            for piece in inflater.feed(raw):
                inflated += len(piece)
                if inflated > room:
                    raise Refused(413, f"body larger than {self.opts.max_body_bytes} bytes once inflated")
                out.append(piece)
        except zlib.error as exc:
            raise Refused(400, f"body does not inflate: {exc}") from None
        return out

    def _hold(self, size: int, held: list[int]) -> None:
        """Count `size` bytes of memory against max_buffered_bytes (503 beyond)."""
        if self.buffered + size > self.opts.max_buffered_bytes:
            raise Refused(503, "busy: the pushes being received would hold more than "
                               f"{self.opts.max_buffered_bytes} bytes")
        held[0] += size
        self.buffered += size
