"""What both commands read: policies (files, folders or `-`) and flows (connections)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from exporter.netpol.errors import InputError
from exporter.netpol.loading import documents
from exporter.netpol.policyinput import PolicyInput, read_policy_input
from exporter.whatif.events import Event
from exporter.whatif.hubble_events import hubble_decoder
from exporter.whatif.reading import InputStats, replay_files, report_invalid_summary
from exporter.whatif.tracking import CalicoPairing, HubbleTracker, Sink

DEFAULT_WINDOW_S = 60.0
FORMATS = ("calico", "goldmane", "hubble")


def add_flow_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="input format: Hubble JSON lines, Calico flows.log, Goldmane emitter JSON")
    parser.add_argument("--connection-window", type=float, default=DEFAULT_WINDOW_S, metavar="SECONDS",
                        help="the same 5-tuple within this many seconds of its last event is the same connection "
                             f"(default {DEFAULT_WINDOW_S:g})")
    parser.add_argument("flows", nargs="+", metavar="FLOWS",
                        help="flow files (.gz read transparently), one per node, each in time order; - for stdin")


def load_policy_inputs(args: argparse.Namespace) -> tuple[PolicyInput, PolicyInput | None]:
    """`--policies` and `--baseline`, read for the same engine (chosen from both together and
    `--cni`); InputError for anything invalid."""
    proposed_docs = documents(args.policies)
    baseline_docs = documents(args.baseline) if args.baseline else []
    both = [*proposed_docs, *baseline_docs]
    proposed = read_policy_input(proposed_docs, args.cni, args.namespace, engine_for=both)
    baseline = read_policy_input(baseline_docs, args.cni, args.namespace, engine_for=both) if args.baseline else None
    for read, what in ((proposed, "--policies"), (baseline, "--baseline")):
        messages = read.invalid_messages() if read is not None else []
        if messages:
            raise InputError("\n".join(f"invalid NetworkPolicy in {what}: {m}" for m in messages))
    return proposed, baseline


def check_stdin(flows: Sequence[str], *policy_lists: Sequence[str]) -> None:
    uses = ("-" in flows) + sum("-" in p for p in policy_lists)
    if uses > 1:
        raise InputError("only one input can be read from stdin (-)")


def replay(args: argparse.Namespace, sink: Sink) -> InputStats:
    """Read the flows and pass every connection to `sink`; ReadError/InputError on unusable input."""
    if args.connection_window <= 0:
        raise InputError(f"--connection-window must be positive, got {args.connection_window:g}")
    stats = InputStats()
    tracker: HubbleTracker | CalicoPairing
    if args.format == "hubble":
        tracker = HubbleTracker(args.connection_window, sink)
        # one file: each event reaches the tracker before the next line is read, so the decoder may touch it
        decode: Callable[[bytes], Any] = hubble_decoder(tracker.active, tracker.window_ns,
                                                        tracker.touch if len(args.flows) == 1 else None)
    else:
        tracker = CalicoPairing(args.connection_window, sink)
        decode = _calico_decoder(args.format)
    replay_files(args.flows, decode, tracker.add, stats)
    tracker.finish()
    report_invalid_summary(stats)
    stats.replies = getattr(tracker, "replies", 0)
    return stats


def _calico_decoder(fmt: str) -> Callable[[bytes], Event | None]:
    """Imported when asked for: a Hubble replay does not pay for the Calico decoders' start-up."""
    from exporter.whatif.calico_events import decode_calico, decode_goldmane

    return decode_goldmane if fmt == "goldmane" else decode_calico
