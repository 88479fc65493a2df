"""`check` output fits the terminal: explanations move under each probe when two columns are too wide."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "tests" / "netpol" / "models" / "temporal.model.yaml"
POLICIES = REPO / "deploy" / "network-policies" / "base"


def check(columns: int) -> str:
    proc = subprocess.run([sys.executable, "-m", "exporter", "check", str(MODEL), "--policies", str(POLICIES)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": str(columns)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("columns", [80, 120])
def test_check_fits_the_terminal(columns: int) -> None:
    out = check(columns).splitlines()
    probes = [line for line in out if " -> " in line and not line.startswith(" ")]
    widest_probe = max(len(line.split("  ")[0]) for line in probes)
    # Only a probe's own name may be wider than the terminal; nothing else is.
    assert max(len(line) for line in out) <= max(columns, widest_probe + 30)
    assert "    ingress (at destination): allowed by temporal/temporal-frontend-policy" in out
    assert out[-1].endswith("as expected, 0 not, 0 unchecked")


def test_check_keeps_one_row_per_probe_on_a_wide_terminal() -> None:
    out = check(400).splitlines()
    assert out[0].split("  ")[0] == "PROBE" and "INGRESS (at destination)" in out[0]
    assert not any(line.startswith("    egress") for line in out)
