"""`netpol-exporter suggest --format F FLOWS...`: least-privilege NetworkPolicies from recorded flows.

Writes multi-document YAML on stdout. Exit 0 when it wrote policies, 2 on an error or when the
flows hold no connection.
"""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    from exporter.whatif.inputs import add_flow_arguments

    parser.add_argument("--as", dest="as_kind", choices=("kubernetes", "calico"), default="kubernetes",
                        help="write Kubernetes NetworkPolicies (default) or Calico NetworkPolicies")
    parser.add_argument("--tier", default=None, metavar="NAME",
                        help="with --as calico: the Calico tier of the policies (default: default)")
    add_flow_arguments(parser)
    parser.epilog = ("exit status: 0 policies written; 1 not used; 2 invalid input or options, or no connection in "
                     "the flows")


def main(args: argparse.Namespace) -> int:
    from exporter.netpol.errors import InputError
    from exporter.whatif.inputs import replay
    from exporter.whatif.reading import ReadError
    from exporter.whatif.suggest import Suggester

    if args.tier is not None and args.as_kind != "calico":
        print("netpol-exporter suggest: error: --tier is for --as calico", file=sys.stderr)
        return 2
    tier = args.tier or "default"
    if not _valid_tier(tier):
        print(f"netpol-exporter suggest: error: --tier: {tier!r} is not a valid tier name (lower-case letters, "
              "digits and '-', starting and ending with a letter or digit)", file=sys.stderr)
        return 2
    suggester = Suggester()
    try:
        stats = replay(args, suggester.add)
    except (InputError, ReadError) as exc:
        print(f"netpol-exporter suggest: error: {exc}", file=sys.stderr)
        return 2
    if args.as_kind == "calico":
        from exporter.whatif.suggest_calico import calico_policies_yaml

        text = calico_policies_yaml(suggester, tier)
    else:
        text = suggester.policies_yaml()
    for note in sorted(suggester.notes):
        print(f"note: {note}", file=sys.stderr)
    if not text:
        print(f"netpol-exporter suggest: error: no connection to write policies for "
              f"({stats.lines} lines, {stats.events} connection events)", file=sys.stderr)
        return 2
    kind = "Calico NetworkPolicies" if args.as_kind == "calico" else "NetworkPolicies"
    sys.stdout.write(f"# netpol-exporter suggest: least-privilege {kind} for {suggester.connections} "
                     f"connections observed in {', '.join(args.flows)}.\n"
                     "# Review before applying: only what the flows show is allowed.\n")
    sys.stdout.write(text)
    return 0


def _valid_tier(name: str) -> bool:
    import re

    return re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", name) is not None
