"""`netpol-exporter demo`: the exporter serving a live replay of the seed's Temporal cluster, no cluster needed.

An in-process source generates Hubble exporter-file lines (exporter.service.demo_traffic) with current
timestamps at a steady pace, in a loop, and feeds them through the normal Pipeline, so /metrics, the
landing page and the JSON API behave exactly as with `run`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from exporter.config import DEFAULT_PORT
from exporter.sources.base import Source

if TYPE_CHECKING:
    from exporter.pipeline import Pipeline

DEMO_LISTEN = f"127.0.0.1:{DEFAULT_PORT}"
DEMO_POLICIES = str(Path(__file__).resolve().parents[1] / "data" / "demo-policies")
DEMO_SPEC = "demo:temporal"
MAX_SLEEP = 0.25


class DemoSource(Source):
    """Replays demo_traffic.schedule() at `speed`× real time, forever (or until stopped)."""

    format = "hubble"

    def __init__(self, pipeline: Pipeline, *, speed: float = 1.0, spec: str = DEMO_SPEC) -> None:
        super().__init__(spec, pipeline)
        from exporter.service.demo_traffic import LOOP_SECONDS, schedule

        self.speed = speed
        self.loop_seconds = LOOP_SECONDS
        self.events = schedule(LOOP_SECONDS)
        self.loops = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.set_state("running", f"replaying {len(self.events)} events per {self.loop_seconds:.0f} s loop "
                                  f"at {self.speed:g}x")
        self.status.lag_seconds = 0.0
        base = time.time()
        while not stop.is_set():
            i = 0
            while i < len(self.events) and not stop.is_set():
                now = time.time()
                batch: list[bytes] = []
                while i < len(self.events):
                    due = base + self.events[i][0] / self.speed
                    if due > now:
                        break
                    batch.append(self.events[i][1](int(due * 1e9)))
                    i += 1
                if batch:
                    self.pipeline.ingest(self.stats, batch, where=self.spec)
                if i < len(self.events):
                    wait = min(MAX_SLEEP, base + self.events[i][0] / self.speed - time.time())
                    if wait > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), wait)
                    else:
                        await asyncio.sleep(0)
            self.loops += 1
            base += self.loop_seconds / self.speed
            wait = base - time.time()
            if wait > 0 and not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)


def configure(parser: argparse.ArgumentParser) -> None:
    from exporter.service.command import add_logging_arguments

    parser.add_argument("--listen", default=DEMO_LISTEN, metavar="HOST:PORT",
                        help=f"address to serve on (default {DEMO_LISTEN}: this machine only)")
    parser.add_argument("--speed", type=_positive, default=1.0, metavar="X",
                        help="replay speed: 2 plays the minute-long loop in 30 s (default 1)")
    parser.add_argument("--duration", type=_positive, metavar="SECONDS", help="exit after this long")
    parser.add_argument("--policies", action="append", metavar="PATH",
                        help="policy files naming the policy behind each verdict (repeatable; default: the seed's "
                             "Temporal policies and the sandbox's Cilium policies shipped in exporter/data)")
    from exporter.netpol.arguments import add_policy_input_arguments

    add_policy_input_arguments(parser)  # --namespace, --cni
    add_logging_arguments(parser)
    parser.epilog = ("exit status: 0 stopped by SIGTERM, SIGINT or --duration; 1 cannot listen on the address; "
                     "2 usage error")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def main(args: argparse.Namespace) -> int:
    from exporter.config import ConfigError, load_config
    from exporter.pipeline import Pipeline
    from exporter.service.logs import setup_logging
    from exporter.service.runtime import Service, serve

    try:
        # The demo ignores NETPOL_EXPORTER_* variables and config files: it always runs the same way.
        config = load_config(env={}, overrides={
            "listen": args.listen, "log_format": args.log_format, "log_level": args.log_level,
            "kubernetes": {"enabled": False}, "policies": args.policies or [DEMO_POLICIES],
            "policies_cni": args.cni, "policies_namespace": args.namespace,
        })
    except ConfigError as exc:
        print(f"netpol-exporter: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_format, config.log_level)
    pipeline = Pipeline(config)
    from exporter.netpol.flowattrib import attach_from_config

    attach_from_config(pipeline, config)  # names the policy behind each drop, as with --policies
    source = DemoSource(pipeline, speed=args.speed)
    service = Service(pipeline, [source], listen=config.listen)

    async def announce_and_serve() -> int:
        task = asyncio.create_task(serve(service, args.duration))
        while not service.addresses and not task.done():
            await asyncio.sleep(0.02)
        if service.addresses:
            url = f"http://{service.url_host()}/"
            print(f"netpol-exporter demo: a replay of the seed's Temporal cluster (no cluster needed)\n"
                  f"  landing page:  {url}\n  metrics:       {url}metrics\n"
                  f"  denied flows:  {url}api/v1/denied-flows\nStop with Ctrl-C.", file=sys.stderr, flush=True)
        return await task

    return asyncio.run(announce_and_serve())
