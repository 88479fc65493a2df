"""Hubble Relay source against a real grpc.aio server of our own serving recorded flows through the
same proto: normal stream, disconnect and reconnect, a server that never answers, TLS and mTLS."""

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
from exporter.decoders.hubble_pb import decode_message
from exporter.model import DecodeError, Family, LostEvents
from exporter.pipeline import Pipeline
from exporter.proto import flow_pb2, observer_pb2, relay_pb2
from exporter.sources import make_source
from exporter.sources.hubble_relay import HubbleRelaySource
from exporter.sources.options import RelayOptions
from tests.sources.certs import write_tls_files
from tests.sources.helpers import Running, total, until

FAST = RelayOptions(backoff_initial_seconds=0.05, backoff_max_seconds=0.2, first_response_timeout_seconds=2)
SERVER_NAME = "relay.hubble.test"


def hubble_json(event_type: int, verdict: str, *, direction: str = "INGRESS", sport: int = 40000,
                t: str = "2026-11-28T19:00:00.100000000Z", reason: str | None = None,
                allowed_by: str | None = None, denied_by: str | None = None) -> dict[str, Any]:
    flow: dict[str, Any] = {
        "time": t, "verdict": verdict, "IP": {"source": "10.0.1.5", "destination": "10.0.2.7", "ipVersion": "IPv4"},
        "l4": {"TCP": {"source_port": sport, "destination_port": 7233, "flags": {"SYN": True}}},
        "source": {"ID": 11, "identity": 4242, "namespace": "network-policy-test", "pod_name": "test-client",
                   "labels": ["k8s:app=test-client", "k8s:io.kubernetes.pod.namespace=network-policy-test"]},
        "destination": {"ID": 22, "identity": 5151, "namespace": "temporal",
                        "pod_name": "temporal-frontend-6d4cf56db6-x2x4z",
                        "workloads": [{"name": "temporal-frontend", "kind": "Deployment"}],
                        "labels": ["k8s:app=temporal-frontend"]},
        "Type": "L3_L4", "node_name": "kind-worker", "event_type": {"type": event_type},
        "traffic_direction": direction, "is_reply": False,
    }
    if reason:
        flow["drop_reason_desc"] = reason
        flow["event_type"]["sub_type"] = 133
    key = "ingress" if direction == "INGRESS" else "egress"
    if allowed_by:
        flow[f"{key}_allowed_by"] = [{"name": allowed_by, "namespace": "temporal", "revision": "7",
                                       "labels": ["k8s:io.cilium.k8s.policy.derived-from=NetworkPolicy"]}]
    if denied_by:
        flow[f"{key}_denied_by"] = [{"name": denied_by, "namespace": "temporal"}]
    return {"flow": flow, "node_name": "kind-worker", "time": t}


# A recording: an allowed connection, a default-deny drop (verdict + its drop-event twin), a
# retransmission 1 s later (verdict only), an explicit deny, a trace, a lost-events notice.
RECORDING: list[dict[str, Any]] = [
    hubble_json(5, "FORWARDED", allowed_by="allow-frontend"),
    hubble_json(5, "DROPPED", reason="POLICY_DENIED", sport=40001, t="2026-11-28T19:00:01.000000000Z"),
    hubble_json(1, "DROPPED", reason="POLICY_DENIED", sport=40001, t="2026-11-28T19:00:01.000010000Z"),
    hubble_json(5, "DROPPED", reason="POLICY_DENIED", sport=40001, t="2026-11-28T19:00:02.000000000Z"),
    hubble_json(5, "DROPPED", reason="POLICY_DENY", direction="EGRESS", sport=40002, denied_by="deny-egress"),
    hubble_json(4, "FORWARDED"),
    {"lost_events": {"source": "HUBBLE_RING_BUFFER", "num_events_lost": "17"}, "node_name": "kind-worker",
     "time": "2026-11-28T19:00:03Z"},
]


def to_response(obj: dict[str, Any]) -> bytes | None:
    """One exporter/observe JSON line → the GetFlowsResponse bytes Relay would send (None: not on GetFlows)."""
    resp = observer_pb2.GetFlowsResponse()
    if "flow" in obj:
        json_format.ParseDict(obj["flow"], resp.flow, ignore_unknown_fields=True)
    elif "lost_events" in obj:
        json_format.ParseDict(obj["lost_events"], resp.lost_events, ignore_unknown_fields=True)
    elif "node_status" in obj:
        json_format.ParseDict(obj["node_status"], resp.node_status, ignore_unknown_fields=True)
    else:
        return None
    resp.node_name = obj.get("node_name", "")
    if obj.get("time"):
        resp.time.FromJsonString(obj["time"])
    return bytes(resp.SerializeToString())


def json_pipeline(objs: list[dict[str, Any]]) -> Pipeline:
    """The same recording through the JSON-lines decoder: the reference the gRPC path must match."""
    pipeline = Pipeline()
    stats = pipeline.source("hubble:reference", "hubble")
    pipeline.ingest(stats, [json.dumps(o).encode() for o in objs])
    return pipeline


def samples(pipeline: Pipeline) -> dict[Family, dict[str, float]]:
    return {family: dict(store.samples()) for family, store in pipeline.stores.items()}


class FlowServer:
    """observer.Observer/GetFlows serving `responses`; optionally failing the first call or never answering."""

    def __init__(self, responses: list[bytes], *, abort_after: int | None = None, hang: bool = False,
                 credentials: grpc.ServerCredentials | None = None) -> None:
        self.responses, self.abort_after, self.hang, self.credentials = responses, abort_after, hang, credentials
        self.requests: list[Any] = []
        self.sent = 0
        self.port = 0
        self.server: grpc.aio.Server | None = None

    async def _get_flows(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        self.requests.append(request)
        if self.hang:
            await asyncio.Event().wait()
        first_call = len(self.requests) == 1
        while self.sent < len(self.responses):
            if first_call and self.abort_after is not None and self.sent == self.abort_after:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "relay restarting")
            yield self.responses[self.sent]
            self.sent += 1
        await asyncio.Event().wait()  # follow: keep the stream open

    async def __aenter__(self) -> FlowServer:
        self.server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler("observer.Observer", {
            "GetFlows": grpc.unary_stream_rpc_method_handler(
                self._get_flows, request_deserializer=observer_pb2.GetFlowsRequest.FromString,
                response_serializer=None),
        })
        self.server.add_generic_rpc_handlers((handler,))
        if self.credentials is None:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        else:
            self.port = self.server.add_secure_port("127.0.0.1:0", self.credentials)
        await self.server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        await self.server.stop(grace=None)


def relay_source(pipeline: Pipeline, port: int, **opts: Any) -> HubbleRelaySource:
    return HubbleRelaySource(f"hubble-relay:127.0.0.1:{port}", pipeline, "127.0.0.1", port,
                             FAST.model_copy(update=opts))


def responses(objs: list[dict[str, Any]]) -> list[bytes]:
    return [r for r in (to_response(o) for o in objs) if r is not None]


def test_decoder_matches_json_decoder_and_handles_other_messages() -> None:
    reference = json_pipeline(RECORDING)
    pipeline = Pipeline()
    stats = pipeline.source("hubble-relay:test", "hubble-pb")
    status = observer_pb2.GetFlowsResponse(node_status=relay_pb2.NodeStatusEvent(
        state_change=relay_pb2.NODE_UNAVAILABLE, node_names=["kind-worker2"], message="connection refused"))
    pipeline.ingest(stats, [*responses(RECORDING), status.SerializeToString()])
    assert samples(pipeline) == samples(reference)
    assert total(pipeline) == 3 and total(pipeline, Family.ALLOWED) == 1
    assert stats.lost == 17 and stats.paired == 1 and stats.invalid == 0
    assert decode_message(to_response(RECORDING[-1]) or b"") == LostEvents(17, str(flow_pb2.HUBBLE_RING_BUFFER))
    with pytest.raises(DecodeError, match="GetFlowsResponse"):
        decode_message(b"\xff\xff\xff")


async def test_stream_counts_exactly_and_asks_to_follow_policy_events() -> None:
    pipeline = Pipeline()
    async with FlowServer(responses(RECORDING)) as server:
        source = relay_source(pipeline, server.port)
        async with Running(source):
            await until(lambda: source.stats.read == len(RECORDING), what="all messages")
            assert source.status.state == "running" and source.stats.up
        request = server.requests[0]
        assert request.follow and [f.type for f in request.whitelist[0].event_type] == [5, 1]
        denied_l7 = request.whitelist[1]
        assert [f.type for f in denied_l7.event_type] == [129] and list(denied_l7.verdict) == [flow_pb2.DROPPED]
    assert samples(pipeline) == samples(json_pipeline(RECORDING))
    assert source.stats.lost == 17 and source.metrics.reconnects[source.spec] == 0
    assert source.status.state == "stopped" and not source.stats.up


async def test_disconnect_mid_stream_reconnects_and_continues() -> None:
    pipeline = Pipeline()
    async with FlowServer(responses(RECORDING), abort_after=3) as server:
        source = relay_source(pipeline, server.port)
        async with Running(source):
            await until(lambda: source.stats.read == len(RECORDING), what="messages after the reconnect")
            assert source.status.state == "running"
        assert len(server.requests) == 2
    assert source.metrics.reconnects[source.spec] == 1 and source.connects == 2
    assert samples(pipeline) == samples(json_pipeline(RECORDING))


async def test_relay_that_never_answers_is_retried() -> None:
    pipeline = Pipeline()
    async with FlowServer([], hang=True) as server:
        source = relay_source(pipeline, server.port, first_response_timeout_seconds=0.2)
        async with Running(source):
            await until(lambda: source.metrics.reconnects[source.spec] >= 2, what="two retries")
            assert source.status.state == "reconnecting" and not source.stats.up
            assert "no response within 0.2s" in source.status.detail
        assert len(server.requests) >= 2


async def test_unreachable_relay_reports_unavailable() -> None:
    pipeline = Pipeline()
    async with FlowServer([]) as server:
        port = server.port
    source = relay_source(pipeline, port)  # the server is gone: connection refused
    async with Running(source):
        await until(lambda: source.metrics.reconnects[source.spec] >= 1)
        assert source.status.state == "reconnecting" and "UNAVAILABLE" in source.status.detail


async def test_tls_with_ca_and_server_name(tmp_path: Path) -> None:
    tls = write_tls_files(tmp_path, SERVER_NAME)
    creds = grpc.ssl_server_credentials([(tls.server.key, tls.server.cert)])
    pipeline = Pipeline()
    async with FlowServer(responses(RECORDING[:2]), credentials=creds) as server:
        source = relay_source(pipeline, server.port, ca_file=str(tls.ca), server_name=SERVER_NAME)
        async with Running(source):
            await until(lambda: source.stats.read == 2, what="flows over TLS")
    assert total(pipeline) == 1 and total(pipeline, Family.ALLOWED) == 1


async def test_mtls_needs_the_client_certificate(tmp_path: Path) -> None:
    tls = write_tls_files(tmp_path, SERVER_NAME)
    creds = grpc.ssl_server_credentials([(tls.server.key, tls.server.cert)], root_certificates=tls.ca_pem,
                                        require_client_auth=True)
    async with FlowServer(responses(RECORDING[:1]), credentials=creds) as server:
        without = relay_source(Pipeline(), server.port, ca_file=str(tls.ca), server_name=SERVER_NAME)
        async with Running(without):
            await until(lambda: without.metrics.reconnects[without.spec] >= 1, what="refused handshake")
            assert without.stats.read == 0 and "UNAVAILABLE" in without.status.detail
        pipeline = Pipeline()
        with_cert = relay_source(pipeline, server.port, ca_file=str(tls.ca), server_name=SERVER_NAME,
                                 cert_file=str(tls.client_cert), key_file=str(tls.client_key))
        async with Running(with_cert):
            await until(lambda: total(pipeline, Family.ALLOWED) == 1, what="flow over mTLS")


async def test_wrong_ca_is_a_clear_error_and_retried(tmp_path: Path) -> None:
    tls = write_tls_files(tmp_path, SERVER_NAME)
    creds = grpc.ssl_server_credentials([(tls.server.key, tls.server.cert)])
    async with FlowServer(responses(RECORDING[:1]), credentials=creds) as server:
        source = relay_source(Pipeline(), server.port, ca_file=str(tls.other_ca), server_name=SERVER_NAME)
        async with Running(source):
            await until(lambda: source.metrics.reconnects[source.spec] >= 2, what="retries")
            detail = source.status.detail
    assert source.stats.read == 0
    assert "UNAVAILABLE" in detail and ("certificate" in detail.lower() or "handshake" in detail.lower()), detail


def test_unreadable_tls_files_fail_at_startup(tmp_path: Path) -> None:
    config = Config()
    object.__setattr__(config, "relay", RelayOptions(ca_file=str(tmp_path / "missing-ca.pem")))
    with pytest.raises(ValueError, match=r"cannot read relay.ca_file .*missing-ca.pem"):
        make_source("hubble-relay:relay:443", Pipeline(), config)
    object.__setattr__(config, "relay", RelayOptions(cert_file=str(tmp_path / "c.pem")))
    with pytest.raises(ValueError, match="must be given together"):
        make_source("hubble-relay:relay:443", Pipeline(), config)


def test_recorded_samples_count_the_same_over_grpc(shared_samples: Path) -> None:
    objs = [json.loads(line) for path in sorted((shared_samples / "hubble").glob("*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]
    objs = [o for o in objs if "flow" in o or "lost_events" in o]
    assert objs
    pipeline = Pipeline()
    stats = pipeline.source("hubble-relay:samples", "hubble-pb")
    pipeline.ingest(stats, responses(objs))
    reference = json_pipeline(objs)
    assert samples(pipeline) == samples(reference)
    ref_stats = reference.self_metrics.sources["hubble:reference"]
    assert (stats.counted, stats.lost, stats.invalid) == (ref_stats.counted, ref_stats.lost, 0)
