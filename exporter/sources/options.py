"""Per-source-kind options (pydantic), read from the Config sections `file`, `relay` and `goldmane_push`.

Until the lead adds those sections to exporter.config.Config, `options_from(config, ...)` falls back to
the defaults below.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileOptions(_Options):
    poll_interval_seconds: float = Field(0.25, gt=0, le=60, description="How often a file is checked for "
                                         "new data, rotation and truncation once it has been read to its end.")
    checkpoint_interval_seconds: float = Field(5.0, gt=0, description="How often the read position is saved "
                                               "to the state dir (also on shutdown).")
    start_at: Literal["beginning", "end"] = Field(
        "beginning", description="Where to start in a file seen for the first time (no checkpoint). New and "
        "rotated-in files are always read from their beginning.")
    read_chunk_bytes: int = Field(1 << 20, ge=4096, description="Bytes read per step (bounded memory).")
    batch_lines: int = Field(1000, ge=1, description="Lines per Pipeline.ingest call; the event loop runs "
                             "between batches.")
    max_line_bytes: int = Field(1 << 20, ge=1024, description="A longer line is discarded as invalid.")


class GrpcClientOptions(_Options):
    """TLS and reconnect settings shared by the gRPC streaming sources."""

    tls: bool = Field(False, description="Connect with TLS (implied by ca_file, cert_file or server_name).")
    ca_file: str | None = Field(None, description="PEM CA bundle that signed the server's certificate "
                                "(default: the system roots).")
    cert_file: str | None = Field(None, description="Client certificate (PEM) for mTLS.")
    key_file: str | None = Field(None, description="Client private key (PEM) for mTLS.")
    server_name: str | None = Field(None, description="TLS server name to verify instead of the host "
                                    "(e.g. `*.default.hubble-grpc.cilium.io` for an agent's Hubble server).")
    backoff_initial_seconds: float = Field(0.5, gt=0, description="First reconnect delay.")
    backoff_max_seconds: float = Field(30.0, gt=0, description="Cap on the reconnect delay (doubling, jittered).")
    first_response_timeout_seconds: float | None = Field(
        30.0, gt=0, description="Reconnect when the server sends nothing this long after a (re)connect "
        "(null: no deadline, keepalive pings only).")
    keepalive_seconds: float = Field(30.0, gt=0, description="HTTP/2 keepalive ping interval: a dead "
                                     "connection is noticed within about twice this.")


class RelayOptions(GrpcClientOptions):
    server_side_filter: bool = Field(True, description="Ask the relay only for policy-verdict and drop "
                                     "events (event types 5 and 1): the only ones that can count.")


class GoldmaneStreamOptions(GrpcClientOptions):
    first_response_timeout_seconds: float | None = Field(
        None, gt=0, description="Goldmane sends a flow only when there was traffic in a 15 s bucket: "
        "no deadline by default.")


class GoldmanePushOptions(_Options):
    tls_cert_file: str | None = Field(None, description="Serve HTTPS with this certificate (PEM, with chain).")
    tls_key_file: str | None = Field(None, description="Private key of tls_cert_file (PEM).")
    client_ca_file: str | None = Field(None, description="Require client certificates signed by this CA (mTLS).")
    max_body_bytes: int = Field(64 << 20, ge=1024, description="Largest accepted POST body (413 beyond).")
    batch_lines: int = Field(1000, ge=1, description="Lines decoded per step (the event loop runs between "
                             "steps); a body is counted only once all of it is decoded.")
    max_concurrent_requests: int = Field(4, ge=1, description="POSTs received and counted at once; more "
                                         "wait for a slot up to body_timeout_seconds, then get 503 (Goldmane retries).")
    max_buffered_bytes: int = Field(128 << 20, ge=1024, description="Body bytes (inflated, plus 64 per "
                                    "line) held by all requests together; a request that would pass it gets 503.")
    body_timeout_seconds: float = Field(30.0, gt=0, description="A body not received in full by then: 408.")
    idle_timeout_seconds: float = Field(15.0, gt=0, description="A connection without a complete request "
                                        "header for this long (new, or idle between requests) is closed.")


OptionsT = TypeVar("OptionsT", bound=_Options)


def options_from(config: Any, section: str, model: type[OptionsT]) -> OptionsT:
    """The `section` of the config as `model`; defaults when the config has no such section yet."""
    value = getattr(config, section, None)
    if value is None:
        return model()
    if isinstance(value, model):
        return value
    if isinstance(value, BaseModel):
        return model.model_validate(value.model_dump())
    return model.model_validate(value)
