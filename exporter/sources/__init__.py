"""Async sources: they only move bytes into Pipeline.ingest (see base.Source).

`make_source(spec, pipeline, config)` builds one from its spec:
  hubble-file:PATH  calico-file:PATH  hubble-stdin  calico-stdin
  hubble-relay:HOST:PORT  calico-goldmane-push:HOST:PORT  calico-goldmane:HOST:PORT (gRPC Flows.Stream)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Nothing heavy at import time: exporter.config may import exporter.sources.options.
if TYPE_CHECKING:
    from exporter.pipeline import Pipeline
    from exporter.sources.base import Source

SPEC_HELP = ("hubble-file:PATH, calico-file:PATH, hubble-stdin, calico-stdin, hubble-relay:HOST:PORT, "
             "calico-goldmane-push:HOST:PORT, calico-goldmane:HOST:PORT")
_FILE_FORMATS = {"hubble-file": "hubble", "calico-file": "calico"}
_STDIN_FORMATS = {"hubble-stdin": "hubble", "calico-stdin": "calico"}


def split_host_port(value: str, spec: str) -> tuple[str, int]:
    """`HOST:PORT` or `[v6]:PORT` → (host, port); ValueError naming the spec."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"source {spec!r}: expected HOST:PORT after the kind, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def make_source(spec: str, pipeline: Pipeline, config: Any = None) -> Source:
    """The source for a spec; ValueError with a clear message for a bad spec or unusable options."""
    from exporter.sources.options import (
        FileOptions,
        GoldmanePushOptions,
        GoldmaneStreamOptions,
        RelayOptions,
        options_from,
    )

    kind, sep, rest = spec.partition(":")
    if kind in _FILE_FORMATS:
        if not sep or not rest:
            raise ValueError(f"source {spec!r}: expected {kind}:PATH")
        from exporter.sources.file import FileSource

        return FileSource(spec, pipeline, rest, _FILE_FORMATS[kind], options_from(config, "file", FileOptions),
                          getattr(config, "state_dir", None))
    if kind in _STDIN_FORMATS:
        if sep:
            raise ValueError(f"source {spec!r}: {kind} takes no argument")
        from exporter.sources.stdin import StdinSource

        return StdinSource(spec, pipeline, _STDIN_FORMATS[kind])
    if kind == "hubble-relay":
        host, port = split_host_port(rest, spec)
        from exporter.sources.hubble_relay import HubbleRelaySource

        return HubbleRelaySource(spec, pipeline, host, port, options_from(config, "relay", RelayOptions))
    if kind == "calico-goldmane-push":
        host, port = split_host_port(rest, spec)
        from exporter.sources.goldmane_push import GoldmanePushSource

        return GoldmanePushSource(spec, pipeline, host, port,
                                  options_from(config, "goldmane_push", GoldmanePushOptions))
    if kind == "calico-goldmane":
        host, port = split_host_port(rest, spec)
        from exporter.sources.goldmane_stream import GoldmaneStreamSource

        return GoldmaneStreamSource(spec, pipeline, host, port,
                                    options_from(config, "goldmane_stream", GoldmaneStreamOptions))
    raise ValueError(f"unknown source {spec!r}: expected one of {SPEC_HELP}")


def __getattr__(name: str) -> Any:
    if name == "Source":
        from exporter.sources.base import Source

        return Source
    raise AttributeError(name)


__all__ = ["SPEC_HELP", "Source", "make_source", "split_host_port"]
