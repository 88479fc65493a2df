"""`netpol-exporter whatif --format F --policies PROPOSED [--baseline CURRENT] [--json|--markdown] FLOWS...`

Replays recorded connections through proposed NetworkPolicies. Exit 0 when nothing breaks
(not-evaluated connections are listed, not failed), 1 when something breaks, 2 on an error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", action="append", required=True, metavar="PROPOSED",
                        help="the proposed NetworkPolicies: YAML file or folder (repeatable); - for stdin")
    parser.add_argument("--baseline", action="append", default=[], metavar="CURRENT",
                        help="today's policies (repeatable): today's verdict is theirs instead of the recorded one")
    parser.add_argument("--staged", action="store_true",
                        help="Calico: the proposal is --policies with its staged policies enforced (stagedAction "
                             "Set adds or replaces, Delete removes); without it staged policies enforce nothing")
    from exporter.netpol.arguments import add_policy_input_arguments

    add_policy_input_arguments(parser)  # --namespace, --cni
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print {breaks, opens, not_evaluated} as JSON")
    output.add_argument("--markdown", action="store_true", help="print Markdown tables (for a pull-request comment)")
    from exporter.whatif.inputs import add_flow_arguments

    add_flow_arguments(parser)
    parser.epilog = ("exit status: 0 nothing breaks (not-evaluated connections are listed, not failed); 1 something "
                     "breaks; 2 invalid input (flows, policies, Cilium and Calico kinds together)")


def main(args: argparse.Namespace) -> int:
    from exporter.netpol.errors import InputError
    from exporter.whatif.inputs import check_stdin, load_policy_inputs, replay
    from exporter.whatif.reading import ReadError
    from exporter.whatif.report import BREAKS, Report, write_json, write_markdown, write_table

    try:
        check_stdin(args.flows, args.policies, args.baseline)
        proposed, baseline = load_policy_inputs(args)
        report = Report(_decider(proposed, args.staged), _decider(baseline, False) if baseline is not None else None)
        _warn(proposed, baseline, args.staged)
        stats = replay(args, report.add)
    except (InputError, ReadError) as exc:
        for line in str(exc).splitlines():
            print(f"netpol-exporter whatif: error: {line}", file=sys.stderr)
        return 2
    rows = report.rows()
    if args.json:
        write_json(rows, sys.stdout)
    elif args.markdown:
        write_markdown(rows, report.totals, sys.stdout)
    else:
        write_table(rows, report.totals, sys.stdout)
    print(f"whatif: {stats.lines} lines, {stats.events} connection events, {stats.replies} replies skipped, "
          f"{stats.invalid} invalid", file=sys.stderr)
    return 1 if rows[BREAKS] else 0


def _decider(read: Any, staged: bool) -> Any:
    """The NetworkPolicy engine's Decider, or the tiered engine's (staged policies enforced on request)."""
    from exporter.netpol.errors import InputError
    from exporter.whatif.decide import Decider

    if not read.tiered:
        if staged:
            raise InputError("--staged: staged policies are Calico's (StagedNetworkPolicy, "
                             "StagedGlobalNetworkPolicy, StagedKubernetesNetworkPolicy); none in --policies")
        return Decider(read.loaded.policies)
    from exporter.whatif.tiered_decide import TieredDecider

    return TieredDecider(read.policy_set.with_staged_enforced() if staged else read.policy_set)


def _warn(proposed: Any, baseline: Any, staged: bool) -> None:
    for read, what in ((proposed, "--policies"), (baseline, "--baseline")):
        if read is None:
            continue
        for warning in read.warnings:
            print(f"warning: {what}: {warning}", file=sys.stderr)
        for note in read.notes:
            print(f"note: {note}", file=sys.stderr)
        if read.found.unevaluated:
            print(f"warning: {what}: the connections those policies decide are evaluated without them",
                  file=sys.stderr)
    pending = len(proposed.policy_set.staged) if proposed.tiered else 0
    if staged and not pending:
        print("warning: --staged: --policies holds no staged policy: the proposal is the policies as they are",
              file=sys.stderr)
    elif pending and not staged:
        print(f"note: {pending} staged policies in --policies enforce nothing (--staged enforces them)",
              file=sys.stderr)
