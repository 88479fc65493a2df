"""`netpol-exporter run`: follow the configured sources and serve /metrics until SIGTERM."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from exporter.commands.common import add_config_arguments, config_from_args

if TYPE_CHECKING:
    from exporter.config import Config
    from exporter.pipeline import Pipeline
    from exporter.service.runtime import Enrichment
    from exporter.sources.base import Source

log = logging.getLogger("netpol_exporter.service")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", dest="sources", action="append", metavar="SPEC",
                        help="an input (repeatable): hubble-file:PATH, calico-file:PATH, hubble-stdin, calico-stdin, "
                             "hubble-relay:HOST:PORT, calico-goldmane-push:HOST:PORT (an HTTP receiver for "
                             "Goldmane's emitter), calico-goldmane:HOST:PORT (Goldmane's gRPC stream)")
    parser.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (default 0.0.0.0:10215)")
    parser.add_argument("--state-dir", metavar="DIR", help="where file sources checkpoint their read positions")
    add_logging_arguments(parser)
    parser.add_argument("--web.config.file", dest="web_config_file", metavar="FILE",
                        help="TLS and basic-auth configuration (Prometheus exporter-toolkit format)")
    add_config_arguments(parser)
    parser.epilog = ("exit status: 0 stopped by SIGTERM or SIGINT; 1 cannot listen on the address; 2 usage or "
                     "configuration error (invalid configuration, web config or source spec, no source)")


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=("logfmt", "json"), help="log line format (default logfmt)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="default info")


def fail(message: str) -> int:
    print(f"netpol-exporter: {message}", file=sys.stderr)
    return 2


def build_sources(specs: list[str], pipeline: Pipeline, config: Config) -> list[Source]:
    """Source objects for the specs; ValueError names a bad spec."""
    try:
        from exporter.sources import make_source
    except ImportError:
        raise ValueError("this build has no source implementations (exporter.sources.make_source)") from None
    built: list[Source] = []
    for spec in specs:
        built.append(make_source(spec, pipeline, config))
    return built


def attach_enrichment(pipeline: Pipeline, config: Config) -> Enrichment | None:
    """Kubernetes enrichment when this build has it and the config does not switch it off."""
    if config.kubernetes.enabled is False:
        return None
    try:
        from exporter.kube.attach import attach  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError:
        if config.kubernetes.enabled:
            log.warning("kubernetes enrichment requested but not part of this build")
        return None
    enrichment: Enrichment | None = attach(pipeline, config)
    return enrichment


def main(args: argparse.Namespace) -> int:
    import asyncio

    from exporter.pipeline import Pipeline
    from exporter.service.logs import setup_logging
    from exporter.service.runtime import Service, serve
    from exporter.service.webconfig import WebConfigError, load_web_config

    overrides: dict[str, Any] = {
        "sources": args.sources,
        "listen": args.listen,
        "state_dir": args.state_dir,
        "log_format": args.log_format,
        "log_level": args.log_level,
        "web_config_file": args.web_config_file,
    }
    config = config_from_args(args, overrides)
    setup_logging(config.log_format, config.log_level)
    web_config = None
    if config.web_config_file:
        try:
            web_config = load_web_config(config.web_config_file)
        except WebConfigError as exc:
            return fail(f"invalid web config: {exc}")
    if not config.sources:
        return fail("no sources: give --source SPEC (repeatable) or `sources:` in the config file")
    pipeline = Pipeline(config)
    try:
        sources = build_sources(config.sources, pipeline, config)
    except ValueError as exc:
        return fail(str(exc))
    from exporter.netpol.flowattrib import attach_from_config

    attach_from_config(pipeline, config)  # --policies: attribution from files (no cluster)
    enrichment = attach_enrichment(pipeline, config)
    service = Service(pipeline, sources, listen=config.listen, enrichment=enrichment, web_config=web_config,
                      state_dir=config.state_dir)
    return asyncio.run(serve(service))
