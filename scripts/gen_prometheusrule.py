#!/usr/bin/env python3
"""Generate the PrometheusRule object from the plain Prometheus rule files in rules/.

rules/*.yml stay the single source (promtool and a bare Prometheus load them as they are); this script
wraps their groups into a `monitoring.coreos.com/v1` PrometheusRule, optionally rewriting:
  --job-selector     the exporter's job matcher (default job="netpol-exporter"), in every expr and
                     annotation query;
  --expected-ports   the expected destination ports of UnexpectedNetworkTraffic (one recording rule);
  --runbook-base-url where runbook_url annotations point;
  --label KEY=VALUE  metadata labels, e.g. `release=kube-prometheus-stack` for a Prometheus that selects
                     rules by label (the base kustomization patches `release` itself).

    python scripts/gen_prometheusrule.py                  # writes deploy/exporter/base/prometheusrule.yaml
    python scripts/gen_prometheusrule.py --check          # exit 1 when that file is out of date
    python scripts/gen_prometheusrule.py --stdout --job-selector 'job="kube-system/netpol"' --label release=prom
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
RULES_DIR = REPO / "rules"
OUTPUT = REPO / "deploy" / "exporter" / "base" / "prometheusrule.yaml"

DEFAULT_JOB_SELECTOR = 'job="netpol-exporter"'
DEFAULT_RUNBOOK_BASE = "https://github.com/netpol-exporter/netpol-exporter/blob/main/docs/runbook.md"
EXPECTED_PORTS_RECORD = "destination_port:networkpolicy_expected_port:info"
DEFAULT_LABELS = {"app.kubernetes.io/name": "netpol-exporter", "app.kubernetes.io/component": "alerting"}

_MATCHER = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"$')
_LABEL_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_PORT_IN_EXPR = re.compile(r'"destination_port", "(\d+)"')


class RulesError(ValueError):
    """Bad rule files or options; the message names the file or option."""


@dataclass
class Options:
    name: str = "netpol-exporter"
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    job_selector: str = DEFAULT_JOB_SELECTOR
    expected_ports: list[int] | None = None
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE


def rule_files(rules_dir: Path = RULES_DIR) -> list[Path]:
    """rules/*.yml, recording-only files first (a reader meets the names before the alerts using them)."""
    files = sorted(rules_dir.glob("*.yml"))
    if not files:
        raise RulesError(f"{rules_dir}: no *.yml rule files")
    return sorted(files, key=lambda p: (_has_alerts(p), p.name))


def _has_alerts(path: Path) -> bool:
    return any("alert" in rule for group in load_groups(path) for rule in group.get("rules", []))


def load_groups(path: Path) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise RulesError(f"{path}: expected a mapping with a `groups` list")
    for index, group in enumerate(data["groups"]):
        if not isinstance(group, dict) or not isinstance(group.get("name"), str) or not isinstance(
                group.get("rules"), list):
            raise RulesError(f"{path}: groups[{index}] needs a `name` and a `rules` list")
    return list(data["groups"])


def expected_ports_expr(ports: Sequence[int]) -> str:
    """The expression of the expected-ports recording rule, formatted as in rules/."""
    if not ports:
        raise RulesError("--expected-ports: at least one port")
    terms = [f'label_replace(vector(1), "destination_port", "{port}", "", "")' for port in ports]
    return "\n".join([terms[0], *(f"or {term}" for term in terms[1:])])


def ports_in_expr(expr: str) -> list[int]:
    return [int(port) for port in _PORT_IN_EXPR.findall(expr)]


def parse_ports(text: str) -> list[int]:
    ports: list[int] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise RulesError(f"--expected-ports: {item!r} is not a port number (1-65535)")
        ports.append(int(item))
    return sorted(set(ports))


def transform(groups: list[dict[str, Any]], options: Options) -> list[dict[str, Any]]:
    """The groups with the job selector, expected ports and runbook base rewritten."""
    if not _MATCHER.match(options.job_selector):
        raise RulesError(f'--job-selector: {options.job_selector!r} is not a label matcher like job="name"')
    groups = copy.deepcopy(groups)
    found_ports_rule = False
    for group in groups:
        for rule in group["rules"]:
            rule["expr"] = _rewrite(str(rule["expr"]), options)
            for key, value in (rule.get("annotations") or {}).items():
                rule["annotations"][key] = _rewrite(str(value), options)
            if rule.get("record") == EXPECTED_PORTS_RECORD:
                found_ports_rule = True
                if options.expected_ports is not None:
                    rule["expr"] = expected_ports_expr(options.expected_ports)
    if options.expected_ports is not None and not found_ports_rule:
        raise RulesError(f"--expected-ports: no `{EXPECTED_PORTS_RECORD}` recording rule in the rule files")
    return groups


def _rewrite(text: str, options: Options) -> str:
    text = text.replace(DEFAULT_JOB_SELECTOR, options.job_selector)
    return text.replace(DEFAULT_RUNBOOK_BASE, options.runbook_base_url.rstrip("/"))


def prometheus_rule(groups: list[dict[str, Any]], options: Options) -> dict[str, Any]:
    for key in options.labels:
        if not _LABEL_NAME.match(key):
            raise RulesError(f"--label: {key!r} is not a valid Kubernetes label name")
    metadata: dict[str, Any] = {"name": options.name}
    if options.namespace:
        metadata["namespace"] = options.namespace
    metadata["labels"] = {**DEFAULT_LABELS, **options.labels}
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": metadata,
            "spec": {"groups": groups}}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(options: Options | None = None, rules_dir: Path = RULES_DIR) -> str:
    options = options or Options()
    groups = [group for path in rule_files(rules_dir) for group in load_groups(path)]
    document = prometheus_rule(transform(groups, options), options)
    header = ("# Generated by scripts/gen_prometheusrule.py from rules/*.yml: edit those and regenerate.\n"
              "# The same groups load into a plain Prometheus from rules/ directly.\n")
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1_000_000, allow_unicode=True)


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Options]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules-dir", type=Path, default=RULES_DIR)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--stdout", action="store_true", help="print instead of writing --output")
    parser.add_argument("--check", action="store_true", help="exit 1 when --output differs from what would be written")
    parser.add_argument("--name", default="netpol-exporter")
    parser.add_argument("--namespace", default=None, help="metadata.namespace (kustomize sets it in deploy/)")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="a metadata label")
    parser.add_argument("--job-selector", default=DEFAULT_JOB_SELECTOR, help=f"default {DEFAULT_JOB_SELECTOR}")
    parser.add_argument("--expected-ports", default=None, metavar="P1,P2,...",
                        help="replace the expected destination ports (default: those in rules/)")
    parser.add_argument("--runbook-base-url", default=DEFAULT_RUNBOOK_BASE)
    args = parser.parse_args(argv)
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--label {item!r}: expected KEY=VALUE")
        labels[key] = value
    options = Options(name=args.name, namespace=args.namespace, labels=labels, job_selector=args.job_selector,
                      runbook_base_url=args.runbook_base_url)
    try:
        options.expected_ports = parse_ports(args.expected_ports) if args.expected_ports is not None else None
    except RulesError as exc:
        parser.error(str(exc))
    return args, options


def main(argv: Sequence[str] | None = None) -> int:
    args, options = parse_args(argv)
    try:
        text = render(options, args.rules_dir)
    except RulesError as exc:
        print(f"gen_prometheusrule: {exc}", file=sys.stderr)
        return 2
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python scripts/gen_prometheusrule.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
