"""`hubble-relay:HOST:PORT`: Hubble Relay's `observer.Observer/GetFlows` with `follow`, over grpc.aio.

The source only moves bytes: it asks for the raw response messages (no deserializer) and feeds them
to Pipeline.ingest, whose `hubble-pb` decoder (exporter.decoders.hubble_pb) applies the same rules as
the JSON lines. `lost_events` add to the lost-events self-metric; `node_status` is logged.

Connection handling (exporter.sources.grpc_stream): optional TLS/mTLS (CA, client certificate and key,
server-name override); HTTP/2 keepalive pings notice a dead connection; a relay that sends nothing
within `first_response_timeout_seconds` of a (re)connect, a stream that ends or fails, a TLS failure:
all reconnect with exponential backoff (doubling, capped, jittered), counted in
`netpol_exporter_source_reconnects_total`. Flows sent while disconnected are not replayed (Relay's
`since` would count some twice); `lost_events` report what Hubble itself dropped.
"""

from __future__ import annotations

from typing import Any

from exporter.pipeline import Pipeline
from exporter.proto import flow_pb2 as _flow_pb2
from exporter.proto import observer_pb2 as _observer_pb2
from exporter.sources.grpc_stream import GrpcStreamSource
from exporter.sources.options import RelayOptions

GET_FLOWS = "/observer.Observer/GetFlows"
flow_pb2: Any = _flow_pb2
observer_pb2: Any = _observer_pb2


def get_flows_request(server_side_filter: bool) -> bytes:
    """`follow` from now on; when filtering at the relay, only what can count: policy-verdict (5) and
    drop (1) events, and L7 records (129) with verdict DROPPED (requests an L7 policy denied). Filters
    of the whitelist are ORed, the fields of one filter ANDed."""
    request = observer_pb2.GetFlowsRequest(follow=True)
    if server_side_filter:
        request.whitelist.add(event_type=[flow_pb2.EventTypeFilter(type=5), flow_pb2.EventTypeFilter(type=1)])
        request.whitelist.add(event_type=[flow_pb2.EventTypeFilter(type=129)], verdict=[flow_pb2.DROPPED])
    data: bytes = request.SerializeToString()
    return data


class HubbleRelaySource(GrpcStreamSource):
    format = "hubble-pb"
    method = GET_FLOWS

    def __init__(self, spec: str, pipeline: Pipeline, host: str, port: int,
                 options: RelayOptions | None = None) -> None:
        self.relay_options = options or RelayOptions()
        super().__init__(spec, pipeline, host, port, self.relay_options, "relay")
        self._request = get_flows_request(self.relay_options.server_side_filter)

    def request(self) -> bytes:
        return self._request
