"""`calico-goldmane:HOST:PORT`: Goldmane's gRPC `goldmane.Flows/Stream` (Calico Open Source 3.30+).

Goldmane (`goldmane.calico-system.svc:7443`, mTLS required) streams one `FlowResult` per flow key per
15 s bucket: each covers its own interval, so their packets add up. On a reconnect the request asks
for buckets starting after the newest one seen (`start_time_gt`), so a bucket is not counted twice;
flows of that newest bucket that had not arrived yet when the stream broke are lost (rare: a bucket's
flows arrive together). Counting is the Goldmane JSON decoder's (exporter.decoders.goldmane).
"""

from __future__ import annotations

from typing import Any

from exporter.decoders.goldmane import decode_flow_result
from exporter.pipeline import Pipeline
from exporter.proto import goldmane_pb2 as _goldmane_pb2
from exporter.sources.grpc_stream import GrpcStreamSource
from exporter.sources.options import GoldmaneStreamOptions

goldmane_pb2: Any = _goldmane_pb2
STREAM = "/goldmane.Flows/Stream"
AGGREGATION_INTERVAL = 15


class GoldmaneStreamSource(GrpcStreamSource):
    # Registered as `goldmane` (the decoder table has no protobuf Goldmane format yet); the decoder is
    # switched to the FlowResult one below.
    format = "goldmane"
    method = STREAM

    def __init__(self, spec: str, pipeline: Pipeline, host: str, port: int,
                 options: GoldmaneStreamOptions | None = None) -> None:
        super().__init__(spec, pipeline, host, port, options or GoldmaneStreamOptions(), "goldmane_stream")
        self.stats.decode = decode_flow_result
        self.newest_start = 0  # start_time of the newest bucket seen

    def request(self) -> bytes:
        req = goldmane_pb2.FlowStreamRequest(start_time_gt=self.newest_start,
                                             aggregation_interval=AGGREGATION_INTERVAL)
        data: bytes = req.SerializeToString()
        return data

    def on_message(self, data: bytes) -> None:
        super().on_message(data)
        start = _start_time(data)
        if start > self.newest_start:
            self.newest_start = start


def _start_time(data: bytes) -> int:
    try:
        result: Any = goldmane_pb2.FlowResult.FromString(data)
    except Exception:  # an undecodable message was already counted invalid by the pipeline
        return 0
    return int(result.flow.start_time)
