"""A server-streaming gRPC call followed for ever: TLS/mTLS, keepalive, first-response deadline and
reconnects with capped, jittered exponential backoff. Messages are passed on as raw bytes."""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import grpc

from exporter.pipeline import Pipeline
from exporter.sources.base import Source
from exporter.sources.metrics import source_metrics
from exporter.sources.options import GrpcClientOptions
from exporter.sources.util import Backoff, until_stopped

log = logging.getLogger("netpol_exporter.sources.grpc")
MAX_MESSAGE_BYTES = 16 << 20


class GrpcStreamSource(Source):
    #: full method name, e.g. `/observer.Observer/GetFlows`
    method: str = ""

    def __init__(self, spec: str, pipeline: Pipeline, host: str, port: int, options: GrpcClientOptions,
                 section: str) -> None:
        super().__init__(spec, pipeline)
        self.opts = options
        self.section = section  # the config section, for messages
        self.target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.credentials = self._credentials()  # read now: a missing file is a startup error
        self.metrics = source_metrics(pipeline)
        self.metrics.reconnects.setdefault(spec, 0)
        self.connects = 0

    @abc.abstractmethod
    def request(self) -> bytes:
        """The serialized request for the next (re)connect."""

    def on_message(self, data: bytes) -> None:
        """Count one response message (default: hand it to the pipeline's decoder)."""
        self.pipeline.ingest(self.stats, (data,), self.stats.read + 1, self.spec)

    def _read(self, option: str, path: str | None) -> bytes | None:
        if not path:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"source {self.spec!r}: cannot read {self.section}.{option} {path}: "
                             f"{exc.strerror or exc}") from None

    def _credentials(self) -> grpc.ChannelCredentials | None:
        o = self.opts
        if not (o.tls or o.ca_file or o.cert_file or o.key_file or o.server_name):
            return None
        if bool(o.cert_file) != bool(o.key_file):
            raise ValueError(f"source {self.spec!r}: {self.section}.cert_file and {self.section}.key_file must "
                             "be given together")
        return grpc.ssl_channel_credentials(root_certificates=self._read("ca_file", o.ca_file),
                                            private_key=self._read("key_file", o.key_file),
                                            certificate_chain=self._read("cert_file", o.cert_file))

    def _channel(self) -> grpc.aio.Channel:
        o = self.opts
        options: list[tuple[str, Any]] = [
            ("grpc.keepalive_time_ms", int(o.keepalive_seconds * 1000)),
            ("grpc.keepalive_timeout_ms", int(min(20.0, o.keepalive_seconds) * 1000)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.enable_retries", 0),
        ]
        if self.credentials is None:
            return grpc.aio.insecure_channel(self.target, options=options)
        if o.server_name:
            options.append(("grpc.ssl_target_name_override", o.server_name))
        return grpc.aio.secure_channel(self.target, self.credentials, options=options)

    async def run(self, stop: asyncio.Event) -> None:
        await until_stopped(stop, self._reconnect_loop())
        self.set_state("stopped")

    async def _reconnect_loop(self) -> None:
        backoff = Backoff(self.opts.backoff_initial_seconds, self.opts.backoff_max_seconds)
        while True:
            try:
                await self._stream(backoff)
                reason = "the server ended the stream"
            except grpc.aio.AioRpcError as exc:
                reason = f"{exc.code().name}: {exc.details()}"
            except TimeoutError:
                reason = f"no response within {self.opts.first_response_timeout_seconds:g}s"
            self.metrics.inc(self.metrics.reconnects, self.spec)
            delay = backoff.next()
            self.set_state("reconnecting", f"{self.target}: {reason}; retrying in {delay:.1f}s")
            log.warning("%s: %s: %s; reconnecting in %.1fs", self.spec, self.target, reason, delay)
            await asyncio.sleep(delay)

    async def _stream(self, backoff: Backoff) -> None:
        async with self._channel() as channel:
            call = channel.unary_stream(self.method, request_serializer=None, response_deserializer=None)(
                self.request())
            timeout = self.opts.first_response_timeout_seconds
            if timeout is not None:  # running once the first message arrived in time
                first = await asyncio.wait_for(call.read(), timeout)
                if first is grpc.aio.EOF:
                    return
                self._connected(backoff)
            else:  # running once connected (TLS handshake done); the first message may take a while
                first = await self._first_when_connected(channel, call, backoff)
            data = first
            while data is not grpc.aio.EOF:
                self.on_message(data)
                if self.stats.last_event_time:
                    self.status.lag_seconds = max(0.0, time.time() - self.stats.last_event_time)
                data = await call.read()

    async def _first_when_connected(self, channel: grpc.aio.Channel, call: Any, backoff: Backoff) -> Any:
        read = asyncio.ensure_future(call.read())
        ready = asyncio.ensure_future(channel.channel_ready())
        try:
            await asyncio.wait({read, ready}, return_when=asyncio.FIRST_COMPLETED)
            if not read.done():
                self._connected(backoff)
            first = await read
            if first is not grpc.aio.EOF and self.status.state != "running":
                self._connected(backoff)
            return first
        finally:
            ready.cancel()
            read.cancel()

    def _connected(self, backoff: Backoff) -> None:
        self.connects += 1
        self.set_state("running", f"streaming from {self.target}")
        log.info("%s: streaming from %s", self.spec, self.target)
        backoff.reset()
