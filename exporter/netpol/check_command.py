"""`netpol-exporter check MODEL.yaml [--policies PATH ...] [--json]`: probes against policies.

Exit 0 when every probe's `expect` holds, 1 when one does not, 2 on invalid input. A probe whose
verdict depends on what offline evaluation cannot decide (Cilium `toFQDNs`, `toServices`, ...) is
reported `undecided` and left unchecked, never guessed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from dataclasses import dataclass
from typing import Any, TextIO

from exporter.netpol.errors import InputError
from exporter.netpol.evaluator import UNDECIDED, DirectionVerdict, Verdict
from exporter.netpol.modelfile import Model, Probe


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL.yaml", help="namespaces, pods, optional policies and probes")
    parser.add_argument(
        "--policies",
        action="append",
        default=[],
        metavar="PATH",
        help="NetworkPolicy/CiliumNetworkPolicy/CiliumClusterwideNetworkPolicy/Calico/AdminNetworkPolicy YAML "
        "file or folder, or - for stdin (repeatable); a kustomization folder is read or rendered",
    )
    from exporter.netpol.arguments import add_policy_input_arguments

    add_policy_input_arguments(parser)  # --namespace, --cni
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.epilog = ("exit status: 0 every probe's expect holds; 1 one does not; 2 invalid input (model or "
                     "policy file)")


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    port: int | None
    verdict: Verdict | Any  # the tiered engine's TieredVerdict has the same outcome/egress/ingress/self_traffic

    @property
    def outcome(self) -> str:
        return self.verdict.outcome  # allow | deny | undecided

    @property
    def ok(self) -> bool | None:
        if self.probe.expect is None or self.outcome == UNDECIDED:
            return None
        return self.probe.expect == self.outcome


def run_probes(model: Model) -> list[ProbeResult]:
    cluster = model.cluster
    results = []
    for probe in model.probes:
        src, dst = cluster.endpoint(probe.source), cluster.endpoint(probe.destination)
        port = cluster.resolve_port(probe.port, probe.protocol, dst)
        results.append(ProbeResult(probe, port, cluster.evaluate(src, dst, port, probe.protocol)))
    return results


def describe_side(side: Any, self_traffic: bool) -> str:
    if self_traffic:
        return "self (always allowed)"
    if side is None:
        return "outside cluster"
    if not isinstance(side, DirectionVerdict):
        from exporter.netpol.tiered_verdict import describe_tiered_side

        return describe_tiered_side(side)
    if side.denying:
        return "denied by " + ", ".join(side.denying)
    if side.outcome == UNDECIDED:
        return "undecided: not evaluated offline in " + ", ".join(side.undecided)
    if side.allowing:
        return "allowed by " + ", ".join(side.allowing)
    if not side.isolated:
        return "not isolated"
    return "denied: isolated by " + ", ".join(side.isolating)


def _probe_text(r: ProbeResult) -> str:
    port = r.probe.port if r.probe.port == r.port or r.probe.port is None else f"{r.probe.port}({r.port})"
    return f"{r.probe.source} -> {r.probe.destination} {r.probe.protocol}/{port if port is not None else '*'}"


def render_table(results: list[ProbeResult], out: TextIO, width: int | None = None) -> None:
    """One row per probe; when the explanations do not fit `width` (the terminal), they go on
    indented, wrapped lines under each probe instead of in two columns."""
    width = width or shutil.get_terminal_size().columns
    header = ("PROBE", "VERDICT", "EXPECT", "RESULT", "EGRESS (at source)", "INGRESS (at destination)")
    rows = [header]
    for r in results:
        result = "-" if r.ok is None else ("ok" if r.ok else "FAIL")
        rows.append(
            (
                _probe_text(r),
                r.outcome,
                r.probe.expect or "-",
                result,
                describe_side(r.verdict.egress, r.verdict.self_traffic),
                describe_side(r.verdict.ingress, r.verdict.self_traffic),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    if sum(widths) + 2 * (len(widths) - 1) <= width:
        for row in rows:
            out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")
        return
    narrow = [max(len(row[i]) for row in rows) for i in range(4)]
    for index, row in enumerate(rows):
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row[:4], narrow, strict=True)).rstrip() + "\n")
        if index == 0:
            continue
        for label, text in (("egress (at source)", row[4]), ("ingress (at destination)", row[5])):
            out.write(textwrap.fill(f"{label}: {text}", max(width, 40), initial_indent="    ",
                                    subsequent_indent="      ", break_on_hyphens=False) + "\n")


def _side_json(side: Any) -> dict[str, Any] | None:
    if side is None:
        return None
    if not isinstance(side, DirectionVerdict):
        from exporter.netpol.tiered_verdict import tiered_side_json

        return tiered_side_json(side)
    return {
        "isolated": side.isolated,
        "isolating": list(side.isolating),
        "allowing": list(side.allowing),
        "denying": list(side.denying),
        "undecided": list(side.undecided),
        "allowed": side.allowed,
        "outcome": side.outcome,
    }


def results_json(results: list[ProbeResult]) -> dict[str, Any]:
    return {
        "probes": [
            {
                "where": r.probe.where,
                "from": r.probe.source,
                "to": r.probe.destination,
                "port": r.port,
                "port_name": r.probe.port if isinstance(r.probe.port, str) else None,
                "protocol": r.probe.protocol,
                "verdict": r.outcome,
                "expect": r.probe.expect,
                "ok": r.ok,
                "self": r.verdict.self_traffic,
                "egress": _side_json(r.verdict.egress),
                "ingress": _side_json(r.verdict.ingress),
            }
            for r in results
        ],
        "passed": sum(1 for r in results if r.ok is True),
        "failed": sum(1 for r in results if r.ok is False),
        "undecided": sum(1 for r in results if r.outcome == UNDECIDED),
    }


def _load(args: argparse.Namespace) -> tuple[Model, list[str]]:
    """The model with its policies, and the warnings and notes to print; InputError on bad input."""
    from exporter.netpol.loading import collect_policies, documents
    from exporter.netpol.modelfile import inline_policy_documents, parse_model, read_model_document
    from exporter.netpol.policyinput import read_policy_input, survey

    model_doc = read_model_document(args.model)
    files = documents(args.policies) if args.policies else []
    inline = inline_policy_documents(model_doc)
    both = read_policy_input([*inline, *files], args.cni, args.namespace)
    if both.tiered:
        model = parse_model(model_doc, policy_set=both.policy_set)
        return model, [*both.warnings, *(f"note: {n}" for n in both.notes)]
    loaded = collect_policies(survey(files).evaluated, args.namespace)
    if loaded.invalid:
        raise InputError("\n".join(f"invalid policy: {m}" for m in loaded.invalid_messages()))
    model = parse_model(model_doc, [lp.policy for lp in loaded.policies])
    return model, [*both.warnings, *(f"note: {n}" for n in loaded.notes)]


def main(args: argparse.Namespace) -> int:
    try:
        model, messages = _load(args)
    except InputError as exc:
        for line in str(exc).splitlines():
            print(f"netpol-exporter check: {'' if line.startswith('invalid policy') else 'error: '}{line}",
                  file=sys.stderr)
        return 2
    for message in messages:
        print(message if message.startswith("note: ") else f"warning: {message}", file=sys.stderr)
    results = run_probes(model)
    failed = sum(1 for r in results if r.ok is False)
    if args.json:
        json.dump(results_json(results), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render_table(results, sys.stdout)
        passed = sum(1 for r in results if r.ok is True)
        undecided = sum(1 for r in results if r.outcome == UNDECIDED)
        print(
            f"\n{len(results)} probes: {passed} as expected, {failed} not, {len(results) - passed - failed} unchecked"
            + (f" ({undecided} undecided: not evaluated offline)" if undecided else "")
        )
    return 1 if failed else 0
