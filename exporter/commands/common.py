"""Options and helpers shared by the commands that count flows (`once`, `run`, `demo`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from exporter.config import Config, ConfigError, load_config


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML configuration file (see docs/configuration.md)")
    parser.add_argument("--kubeconfig", metavar="PATH", help="enrich flows from this cluster (kubeconfig)")
    parser.add_argument("--no-kubernetes", action="store_true", help="never contact a Kubernetes API server")
    parser.add_argument("--policies", action="append", metavar="PATH",
                        help="name the policies behind verdicts from these policy files or folders (repeatable; - "
                             "for stdin); excludes --kubeconfig")
    from exporter.netpol.arguments import add_policy_input_arguments

    add_policy_input_arguments(parser)  # --namespace, --cni


def config_from_args(args: argparse.Namespace, overrides: dict[str, Any] | None = None) -> Config:
    """Load the configuration; on error (a usage error too: --policies with --kubeconfig) print the
    message and exit 2."""
    over: dict[str, Any] = dict(overrides or {})
    kube: dict[str, Any] = {}
    if getattr(args, "kubeconfig", None):
        kube.update(enabled=True, kubeconfig=args.kubeconfig)
    if getattr(args, "no_kubernetes", False):
        kube["enabled"] = False
    if kube:
        over["kubernetes"] = kube
    if getattr(args, "policies", None):
        over["policies"] = args.policies
    if getattr(args, "cni", None):
        over["policies_cni"] = args.cni
    if getattr(args, "namespace", None) not in (None, "default"):
        over["policies_namespace"] = args.namespace
    try:
        return load_config(getattr(args, "config", None), overrides=over)
    except ConfigError as exc:
        print(f"netpol-exporter: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
