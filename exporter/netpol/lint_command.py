"""`netpol-exporter lint --policies PATH ...`: review NetworkPolicies (checks: exporter.netpol.lint).

Exit 0 when no error-severity finding is left, 1 when one is, 2 on invalid input (unreadable
files, YAML errors, objects the API server would reject) or when no NetworkPolicy was found.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        action="append",
        required=True,
        metavar="PATH",
        help="NetworkPolicy/CiliumNetworkPolicy/CiliumClusterwideNetworkPolicy/Calico/AdminNetworkPolicy YAML "
        "file or folder, or - for stdin (repeatable); a kustomization folder is read or rendered",
    )
    from exporter.netpol.arguments import add_policy_input_arguments

    add_policy_input_arguments(parser)  # --namespace, --cni
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--show-suppressed", action="store_true", help="also print findings a policy acknowledges")
    parser.epilog = ("exit status: 0 no error-severity finding; 1 an error finding; 2 invalid input (unreadable "
                     "file, invalid YAML or NetworkPolicy) or no NetworkPolicy found")


def main(args: argparse.Namespace) -> int:
    from exporter.netpol.errors import InputError
    from exporter.netpol.lint import lint_input
    from exporter.netpol.policyinput import read_policy_files

    try:
        read = read_policy_files(args.policies, args.cni, args.namespace)
        loaded, findings = lint_input(read)
    except InputError as exc:
        for line in str(exc).splitlines():
            print(f"netpol-exporter lint: error: {line}", file=sys.stderr)
        return 2
    for warning in read.warnings:  # on stderr, also with --json (where unevaluated kinds are findings too)
        print(f"warning: {warning}", file=sys.stderr)
    for note in read.notes if read.tiered else loaded.notes:  # assumed namespaces: on stderr, also with --json
        print(f"note: {note}", file=sys.stderr)
    if not read.count and not read.found.unevaluated:
        print(f"netpol-exporter lint: error: no NetworkPolicy found in {', '.join(args.policies)}", file=sys.stderr)
        return 2
    active = [f for f in findings if not f.suppressed]
    if args.json:
        json.dump(
            [
                {
                    "severity": f.severity,
                    "check": f.check,
                    "policy": f.policy,
                    "path": f.path,
                    "where": f.where,
                    "message": f.message,
                    "suppressed": f.suppressed,
                }
                for f in findings
            ],
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        for f in findings if args.show_suppressed else active:
            tag = f"{f.severity} (suppressed)" if f.suppressed else f.severity
            print(f"{f.where}: {tag} [{f.check}] {f.policy} {f.path}: {f.message}")
        counts = Counter(f.severity for f in active)
        summary = ", ".join(f"{counts[s]} {s}" for s in ("error", "warning", "info") if counts[s]) or "no findings"
        suppressed = len(findings) - len(active)
        print(
            f"{read.count} policies: {summary}"
            + (f" ({suppressed} suppressed)" if suppressed else ""),
            file=sys.stderr,
        )
    if loaded.invalid:
        return 2
    return 1 if any(f.severity == "error" for f in active) else 0
