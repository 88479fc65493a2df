"""`hubble-relay:HOST:PORT`: Hubble Relay's `observer.Observer/GetFlows` with `follow`, over grpc.aio.

The source only moves bytes: it asks for the raw response messages (no deserializer) and feeds them
to Pipeline.ingest, whose `hubble-pb` decoder (exporter.decoders.hubble_pb) applies the same rules as
the JSON lines. `lost_events` add to the lost-events self-metric; `node_status` is logged.

Connection handling: optional TLS/mTLS (CA, client certificate and key, server-name override);
HTTP/2 keepalive pings notice a dead connection; a relay that sends nothing within
`first_response_timeout_seconds` of a (re)connect, a stream that ends or fails, a TLS failure: all
reconnect with exponential backoff (doubling, capped, jittered), counted in
`netpol_exporter_source_reconnects_total`. Flows sent while disconnected are not replayed (Relay's
`since` would count some twice); `lost_events` report what Hubble itself dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import grpc

from exporter.pipeline import Pipeline
from exporter.proto import flow_pb2 as _flow_pb2
from exporter.proto import observer_pb2 as _observer_pb2
from exporter.sources.base import Source
from exporter.sources.metrics import source_metrics
from exporter.sources.options import RelayOptions
from exporter.sources.util import Backoff, until_stopped

log = logging.getLogger("netpol_exporter.sources.hubble_relay")
GET_FLOWS = "/observer.Observer/GetFlows"
MAX_MESSAGE_BYTES = 16 << 20
flow_pb2: Any = _flow_pb2
observer_pb2: Any = _observer_pb2


def get_flows_request(server_side_filter: bool) -> bytes:
    """`follow` from now on; only policy-verdict (5) and drop (1) events when filtering at the relay."""
    request = observer_pb2.GetFlowsRequest(follow=True)
    if server_side_filter:
        request.whitelist.add(event_type=[flow_pb2.EventTypeFilter(type=5), flow_pb2.EventTypeFilter(type=1)])
    data: bytes = request.SerializeToString()
    return data


class HubbleRelaySource(Source):
    format = "hubble-pb"

    def __init__(self, spec: str, pipeline: Pipeline, host: str, port: int,
                 options: RelayOptions | None = None) -> None:
        super().__init__(spec, pipeline)
        self.opts = options or RelayOptions()
        self.target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.credentials = self._credentials()  # read now: a missing file is a startup error
        self.request = get_flows_request(self.opts.server_side_filter)
        self.metrics = source_metrics(pipeline)
        self.metrics.reconnects.setdefault(spec, 0)
        self.connects = 0

    def _read(self, option: str, path: str | None) -> bytes | None:
        if not path:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"source {self.spec!r}: cannot read relay.{option} {path}: "
                             f"{exc.strerror or exc}") from None

    def _credentials(self) -> grpc.ChannelCredentials | None:
        o = self.opts
        if not (o.tls or o.ca_file or o.cert_file or o.key_file or o.server_name):
            return None
        if bool(o.cert_file) != bool(o.key_file):
            raise ValueError(f"source {self.spec!r}: relay.cert_file and relay.key_file must be given together")
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
                reason = "the relay ended the stream"
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
            get_flows = channel.unary_stream(GET_FLOWS, request_serializer=None, response_deserializer=None)
            call = get_flows(self.request)
            first = await asyncio.wait_for(call.read(), self.opts.first_response_timeout_seconds)
            if first is grpc.aio.EOF:
                return
            self.connects += 1
            self.set_state("running", f"streaming from {self.target}")
            log.info("%s: streaming flows from %s", self.spec, self.target)
            backoff.reset()
            data = first
            ingest, stats = self.pipeline.ingest, self.stats
            while data is not grpc.aio.EOF:
                ingest(stats, (data,), stats.read + 1, self.spec)
                if stats.last_event_time:
                    self.status.lag_seconds = max(0.0, time.time() - stats.last_event_time)
                data = await call.read()
