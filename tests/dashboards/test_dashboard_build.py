"""The committed dashboards are exactly what dashboards/build.py generates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.dashboards.common import DASHBOARDS, committed, load_builder

BUILD = DASHBOARDS / "build.py"


def test_committed_json_matches_the_builder() -> None:
    builder = load_builder()
    built = builder.build()
    assert sorted(built) == sorted(committed()), "dashboards/*.json and the builder's files differ"
    for name, model in built.items():
        on_disk = (DASHBOARDS / name).read_text(encoding="utf-8")
        assert on_disk == builder.render(model), f"{name} drifted from dashboards/build.py: run it and commit"


def test_check_flag_detects_drift(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(BUILD), "--out", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=60, check=False)

    assert run("--check").returncode == 1  # nothing written yet
    assert run().returncode == 0
    assert run("--check").returncode == 0
    first = sorted(tmp_path.glob("*.json"))[0]
    model = json.loads(first.read_text(encoding="utf-8"))
    model["title"] += " (edited by hand)"
    first.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    result = run("--check")
    assert result.returncode == 1 and first.name in result.stderr


def test_json_is_plain_and_small() -> None:
    for path in DASHBOARDS.glob("*.json"):
        text = path.read_text(encoding="utf-8")
        json.loads(text)
        # A ConfigMap holds at most 1 MiB; keep well below so the sidecar route never breaks.
        assert len(text.encode()) < 256 * 1024, f"{path.name} is {len(text)} bytes"
