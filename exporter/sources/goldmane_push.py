"""`calico-goldmane-push:HOST:PORT`: an HTTP receiver for Goldmane's emitter (Calico OSS 3.30+ `PUSH_URL`).

Goldmane POSTs `application/x-ndjson` batches of `goldmane.Flow` (Go encoding/json) and retries any
answer but 200. So a batch is answered only once every line of it is ingested, and:
- 200 for a processed batch, also when some lines were invalid (they are counted in
  `netpol_exporter_events_invalid_total` and logged with their line number; the JSON answer lists how
  many): retrying cannot fix a bad line, and a retry of a partly counted batch would count twice;
- 400 when the request itself is unusable (body not UTF-8, gzip body that does not inflate),
  413 above `max_body_bytes`, 415 for a content type that is not NDJSON/JSON/text — nothing of such
  a request is counted, so a retry never double counts.
Any path is accepted (PUSH_URL may carry one); GET on `/` answers a short description. Optional HTTPS
and client-certificate verification (`tls_cert_file`, `tls_key_file`, `client_ca_file`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiohttp import web

from exporter.pipeline import Pipeline
from exporter.sources.base import Source
from exporter.sources.metrics import source_metrics
from exporter.sources.options import GoldmanePushOptions

log = logging.getLogger("netpol_exporter.sources.goldmane_push")
ACCEPTED_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                            "application/json", "text/plain", "application/octet-stream", ""})


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
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
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
        return web.json_response(body, status=status)

    async def _handle_post(self, request: web.Request) -> web.Response:
        content_type = request.content_type.lower()
        if content_type not in ACCEPTED_TYPES:
            log.warning("%s: rejected a push from %s: content type %r", self.spec, request.remote, content_type)
            return self._answer(415, {"error": f"unsupported content type {content_type!r}; "
                                               "expected application/x-ndjson"})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            log.warning("%s: rejected a push from %s: body larger than %d bytes", self.spec, request.remote,
                        self.opts.max_body_bytes)
            return self._answer(413, {"error": f"body larger than {self.opts.max_body_bytes} bytes"})
        except Exception as exc:  # a body aiohttp cannot read or inflate
            log.warning("%s: rejected a push from %s: unreadable body: %s", self.spec, request.remote, exc)
            return self._answer(400, {"error": f"unreadable body: {exc}"})
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            log.warning("%s: rejected a push from %s: body is not UTF-8 (byte %d)", self.spec, request.remote,
                        exc.start)
            return self._answer(400, {"error": f"body is not UTF-8 (byte {exc.start})"})
        self._batches += 1
        where = f"{self.spec} batch {self._batches}"
        read, invalid, counted = self.stats.read, self.stats.invalid, self.stats.counted
        lines = body.split(b"\n")
        step = self.opts.batch_lines
        for i in range(0, len(lines), step):
            self.pipeline.ingest(self.stats, lines[i:i + step], i + 1, where)
            if i + step < len(lines):
                await asyncio.sleep(0)
        result = {"lines": self.stats.read - read, "counted": self.stats.counted - counted,
                  "invalid": self.stats.invalid - invalid}
        if result["invalid"]:
            log.warning("%s: %s from %s: %d of %d lines invalid (counted the rest)", self.spec, where,
                        request.remote, result["invalid"], result["lines"])
        return self._answer(200, result)
