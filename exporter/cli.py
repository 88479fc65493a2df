"""`netpol-exporter` command line: one subcommand per module, imported lazily."""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Sequence

from exporter import __version__

# name -> (module, help). Each module has `configure(parser)` and `main(args) -> int`,
# and imports its heavy dependencies inside main() so `--help` stays fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "once": ("exporter.commands.once", "count flow-log files (or stdin) and print the metrics"),
    "run": ("exporter.service.command", "run the exporter: follow sources, serve /metrics"),
    "demo": ("exporter.service.demo", "serve a live replay of a bundled Temporal cluster's flows"),
    "check": ("exporter.netpol.check_command", "verify NetworkPolicies against expected connectivity"),
    "lint": ("exporter.netpol.lint_command", "review NetworkPolicies for common mistakes"),
    "whatif": ("exporter.whatif.whatif_command", "replay recorded flows through proposed NetworkPolicies"),
    "suggest": ("exporter.whatif.suggest_command", "write least-privilege NetworkPolicies from recorded flows"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen command's module is imported (start-up stays fast)."""
    parser = argparse.ArgumentParser(
        prog="netpol-exporter",
        description="Network-policy verdicts from Cilium Hubble and Calico flow logs as Prometheus metrics.",
    )
    parser.add_argument("--version", action="version", version=f"netpol-exporter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.configure(command_parser)
            command_parser.set_defaults(_main=module.main)
    return parser


def tune_gc() -> None:
    """The hot path allocates many short-lived tuples and few cycles: collect the young generation
    less often, and keep the objects alive at start-up (modules, caches) out of every collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def main(argv: Sequence[str] | None = None) -> int:
    # The configuration's pydantic models would otherwise scan every installed package's entry points
    # for pydantic plugins at start-up (a tenth of `once`'s); set the variable to "" to load them.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    tune_gc()
    arguments = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in arguments if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(arguments)
    if not getattr(args, "_main", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._main(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
