"""Every command's --help states its exit statuses; `run --help` lists every source kind the docs list."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]


def help_text(command: str) -> str:
    # Wide: argparse wraps at hyphens, which would split the source kinds.
    proc = subprocess.run([sys.executable, "-m", "exporter", command, "--help"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "COLUMNS": "1000"})
    assert proc.returncode == 0, proc.stderr
    return " ".join(proc.stdout.split())


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_states_exit_statuses(command: str) -> None:
    text = help_text(command)
    assert re.search(r"exit status: 0 .*; 1 .*; 2 ", text), text[-400:]


def test_run_help_and_configuration_docs_list_every_source_kind() -> None:
    from exporter.sources import SPEC_HELP  # the list make_source's own error message gives

    specs = SPEC_HELP.split(", ")
    assert "calico-goldmane:HOST:PORT" in specs
    text = help_text("run")
    docs = (REPO / "docs" / "configuration.md").read_text()
    for spec in specs:
        assert re.search(rf"(^|[\s,]){re.escape(spec)}\b", text), f"run --help does not list {spec}"
        assert f"`{spec}`" in docs, f"docs/configuration.md does not list {spec}"
