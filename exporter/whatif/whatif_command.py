"""`netpol-exporter whatif --format F --policies PROPOSED [--baseline CURRENT] [--json|--markdown] FLOWS...`

Replays recorded connections through proposed NetworkPolicies. Exit 0 when nothing breaks
(not-evaluated connections are listed, not failed), 1 when something breaks, 2 on an error.
"""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("exit status: 0 nothing breaks (not-evaluated connections are listed, not failed); 1 something "
                     "breaks; 2 an error (unreadable file, invalid policy)")
    parser.add_argument("--policies", action="append", required=True, metavar="PROPOSED",
                        help="the proposed NetworkPolicies: YAML file or folder (repeatable); - for stdin")
    parser.add_argument("--baseline", action="append", default=[], metavar="CURRENT",
                        help="today's policies (repeatable): today's verdict is theirs instead of the recorded one")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print {breaks, opens, not_evaluated} as JSON")
    output.add_argument("--markdown", action="store_true", help="print Markdown tables (for a pull-request comment)")
    from exporter.whatif.inputs import add_flow_arguments

    add_flow_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from exporter.netpol.errors import InputError
    from exporter.whatif.decide import Decider
    from exporter.whatif.inputs import check_stdin, load_policy_set, replay
    from exporter.whatif.reading import ReadError
    from exporter.whatif.report import BREAKS, Report, write_json, write_markdown, write_table

    try:
        check_stdin(args.flows, args.policies, args.baseline)
        proposed = load_policy_set(args.policies, "--policies")
        baseline = load_policy_set(args.baseline, "--baseline") if args.baseline else None
        report = Report(Decider(proposed.policies), Decider(baseline.policies) if baseline is not None else None)
        stats = replay(args, report.add)
    except (InputError, ReadError) as exc:
        print(f"netpol-exporter whatif: error: {exc}", file=sys.stderr)
        return 2
    for loaded in (proposed, baseline):
        for note in loaded.notes if loaded is not None else ():
            print(f"note: {note}", file=sys.stderr)
            if "Policy" in note.rsplit("skipped kind", 1)[-1]:
                print("warning: the engine does not read this policy kind: the connections it decides are "
                      "evaluated without it", file=sys.stderr)
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
