"""`netpol-exporter suggest --format F FLOWS...`: least-privilege NetworkPolicies from recorded flows.

Writes multi-document YAML on stdout. Exit 0 when it wrote policies, 2 on an error or when the
flows hold no connection.
"""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    from exporter.whatif.inputs import add_flow_arguments

    add_flow_arguments(parser)
    parser.epilog = ("exit status: 0 policies written; 1 not used; 2 an error (unreadable file, bad input) or no "
                     "connection in the flows")


def main(args: argparse.Namespace) -> int:
    from exporter.netpol.errors import InputError
    from exporter.whatif.inputs import replay
    from exporter.whatif.reading import ReadError
    from exporter.whatif.suggest import Suggester

    suggester = Suggester()
    try:
        stats = replay(args, suggester.add)
    except (InputError, ReadError) as exc:
        print(f"netpol-exporter suggest: error: {exc}", file=sys.stderr)
        return 2
    text = suggester.policies_yaml()
    for note in sorted(suggester.notes):
        print(f"note: {note}", file=sys.stderr)
    if not text:
        print(f"netpol-exporter suggest: error: no connection to write policies for "
              f"({stats.lines} lines, {stats.events} connection events)", file=sys.stderr)
        return 2
    sys.stdout.write(f"# netpol-exporter suggest: least-privilege NetworkPolicies for {suggester.connections} "
                     f"connections observed in {', '.join(args.flows)}.\n"
                     "# Review before applying: only what the flows show is allowed.\n")
    sys.stdout.write(text)
    return 0
