"""Goldmane's gRPC Flows.Stream source against a real grpc.aio server of our own (mTLS, as Goldmane)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from exporter.config import Config
from exporter.decoders.goldmane import decode_flow_result, decode_line
from exporter.model import DecodeError, Family
from exporter.pipeline import Pipeline
from exporter.proto import goldmane_pb2
from exporter.sources import make_source
from exporter.sources.goldmane_stream import GoldmaneStreamSource
from exporter.sources.options import GoldmaneStreamOptions
from tests.sources.certs import TlsFiles, write_tls_files
from tests.sources.goldmane_flows import ALLOW, DENIED_BY_END_OF_TIER, K8S_NP, SRC, goldmane_flow, hit
from tests.sources.helpers import Running, total, until

SERVER_NAME = "goldmane.calico-system.svc"


def bucket(line: bytes, start: int) -> dict[str, Any]:
    flow = json.loads(line)
    flow["start_time"], flow["end_time"] = start, start + 15
    return flow


FLOWS = [
    bucket(DENIED_BY_END_OF_TIER, 1764357600),
    bucket(goldmane_flow(action=ALLOW, reporter=SRC, packets_in=3, packets_out=4,
                         enforced=[hit(K8S_NP, "allow-client", "temporal", action=ALLOW)]), 1764357600),
    bucket(goldmane_flow(packets_in=11), 1764357615),
    bucket(goldmane_flow(packets_in=13), 1764357630),
]


def flow_result(flow: dict[str, Any], result_id: int) -> bytes:
    result = goldmane_pb2.FlowResult(id=result_id)  # type: ignore[attr-defined]
    json_format.ParseDict(flow, result.flow)
    return bytes(result.SerializeToString())


class GoldmaneServer:
    """goldmane.Flows/Stream: sends the flows starting after `start_time_gt`, like Goldmane."""

    def __init__(self, flows: list[dict[str, Any]], credentials: grpc.ServerCredentials,
                 abort_after: int | None = None) -> None:
        self.flows, self.credentials, self.abort_after = flows, credentials, abort_after
        self.requests: list[Any] = []
        self.port = 0
        self.server: grpc.aio.Server | None = None

    async def _stream(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        self.requests.append(request)
        first_call = len(self.requests) == 1
        for sent, (i, flow) in enumerate((i, f) for i, f in enumerate(self.flows)
                                         if f["start_time"] > request.start_time_gt):
            if first_call and sent == self.abort_after:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "goldmane restarting")
            yield flow_result(flow, i + 1)
        await asyncio.Event().wait()

    async def __aenter__(self) -> GoldmaneServer:
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("goldmane.Flows", {
            "Stream": grpc.unary_stream_rpc_method_handler(
                self._stream, request_deserializer=goldmane_pb2.FlowStreamRequest.FromString,  # type: ignore[attr-defined]
                response_serializer=None)}),))
        self.port = self.server.add_secure_port("127.0.0.1:0", self.credentials)
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.stop(grace=None)


def mtls(tmp_path: Path) -> tuple[TlsFiles, grpc.ServerCredentials]:
    tls = write_tls_files(tmp_path, SERVER_NAME)
    creds = grpc.ssl_server_credentials([(tls.server.key, tls.server.cert)], root_certificates=tls.ca_pem,
                                        require_client_auth=True)
    return tls, creds


def stream_source(pipeline: Pipeline, port: int, tls: TlsFiles) -> GoldmaneStreamSource:
    options = GoldmaneStreamOptions(ca_file=str(tls.ca), cert_file=str(tls.client_cert), key_file=str(tls.client_key),
                                    server_name=SERVER_NAME, backoff_initial_seconds=0.05, backoff_max_seconds=0.2)
    return GoldmaneStreamSource(f"calico-goldmane:127.0.0.1:{port}", pipeline, "127.0.0.1", port, options)


def reference(flows: list[dict[str, Any]]) -> dict[Family, dict[str, float]]:
    pipeline = Pipeline()
    stats = pipeline.source("goldmane:reference", "goldmane")
    pipeline.ingest(stats, [json.dumps(f).encode() for f in flows])
    return {family: dict(store.samples()) for family, store in pipeline.stores.items()}


def test_flow_result_decodes_like_the_json_line() -> None:
    for i, flow in enumerate(FLOWS):
        assert decode_flow_result(flow_result(flow, i)) == decode_line(json.dumps(flow).encode())
    with pytest.raises(DecodeError, match="FlowResult"):
        decode_flow_result(b"\xff\xff")


async def test_stream_over_mtls_counts_like_the_push_receiver(tmp_path: Path) -> None:
    tls, creds = mtls(tmp_path)
    pipeline = Pipeline()
    async with GoldmaneServer(FLOWS, creds) as server:
        source = stream_source(pipeline, server.port, tls)
        async with Running(source):
            await until(lambda: source.stats.read == len(FLOWS), what="all flows")
            assert source.status.state == "running"
        assert server.requests[0].aggregation_interval == 15 and server.requests[0].start_time_gt == 0
    assert {f: dict(s.samples()) for f, s in pipeline.stores.items()} == reference(FLOWS)
    assert total(pipeline) == 5 + 11 + 13 and total(pipeline, Family.ALLOWED) == 7


async def test_reconnect_resumes_after_the_newest_bucket(tmp_path: Path) -> None:
    tls, creds = mtls(tmp_path)
    pipeline = Pipeline()
    async with GoldmaneServer(FLOWS, creds, abort_after=3) as server:
        source = stream_source(pipeline, server.port, tls)
        async with Running(source):
            await until(lambda: total(pipeline) == 29, what="the flow sent after the reconnect")
            await asyncio.sleep(0.1)
        assert [r.start_time_gt for r in server.requests] == [0, 1764357615]
    assert source.metrics.reconnects[source.spec] == 1 and source.stats.read == len(FLOWS)
    assert total(pipeline) == 29 and total(pipeline, Family.ALLOWED) == 7  # nothing twice


async def test_connected_is_running_before_any_flow_and_without_client_cert_fails(tmp_path: Path) -> None:
    tls, creds = mtls(tmp_path)
    async with GoldmaneServer([], creds) as server:
        source = stream_source(Pipeline(), server.port, tls)
        async with Running(source):
            await until(lambda: source.status.state == "running", what="connected")
        no_cert = make_source(f"calico-goldmane:127.0.0.1:{server.port}", Pipeline(), Config())
        assert isinstance(no_cert, GoldmaneStreamSource)
        no_cert.opts = no_cert.opts.model_copy(update={"backoff_initial_seconds": 0.05})
        async with Running(no_cert):  # plaintext to a TLS server: refused
            await until(lambda: no_cert.metrics.reconnects[no_cert.spec] >= 1)
            assert no_cert.status.state == "reconnecting" and "UNAVAILABLE" in no_cert.status.detail
