"""`promtool check rules` and `promtool test rules` on the pack, for real."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.promstack import require_tool
from tests.rules.pack import PROMTOOL_TESTS, REPO, RULE_FILES

TIMEOUT = 120


def run(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)


def test_rule_files_pass_promtool_check() -> None:
    promtool = require_tool("promtool")
    assert RULE_FILES, "no rule files in rules/"
    result = run([promtool, "check", "rules", *map(str, RULE_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("test_file", PROMTOOL_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests(test_file: Path) -> None:
    promtool = require_tool("promtool")
    result = run([promtool, "test", "rules", str(test_file)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests catch the seed's bug: with its per-series expression they must fail."""
    promtool = require_tool("promtool")
    (tmp_path / "rules").mkdir()
    for path in RULE_FILES:
        text = path.read_text()
        if "alert: NetworkPolicyViolation" in text:
            seed = "increase(networkpolicy_dropped_packets_total[5m]) > 10"
            text = text.replace("expr: policy:networkpolicy_dropped_packets:increase5m > 10", f"expr: {seed}")
            assert seed in text
        (tmp_path / "rules" / path.name).write_text(text)
    tests_dir = tmp_path / "tests" / "rules" / "promtool"
    tests_dir.mkdir(parents=True)
    alerts_test = next(p for p in PROMTOOL_TESTS if p.name == "alerts.test.yml")
    (tests_dir / alerts_test.name).write_text(alerts_test.read_text())
    result = run([promtool, "test", "rules", str(tests_dir / alerts_test.name)])
    assert result.returncode != 0
    assert "violation spread thinly over many series" in result.stdout + result.stderr


def test_promtool_unit_tests_catch_a_per_instance_inhibition_source(tmp_path: Path) -> None:
    """The drop alerts' inhibition source must not fire while one exporter of several is down: with
    NetpolExporterDown's per-instance expression (the review's bug), the unit tests fail."""
    promtool = require_tool("promtool")
    (tmp_path / "rules").mkdir()
    for path in RULE_FILES:
        text = path.read_text()
        if "alert: NetpolExporterAllDown" in text:
            fixed = 'expr: absent(up{job="netpol-exporter"} == 1)'
            assert text.count(fixed) == 1
            text = text.replace(fixed, 'expr: up{job="netpol-exporter"} == 0 or absent(up{job="netpol-exporter"})')
        (tmp_path / "rules" / path.name).write_text(text)
    tests_dir = tmp_path / "tests" / "rules" / "promtool"
    tests_dir.mkdir(parents=True)
    alerts_test = next(p for p in PROMTOOL_TESTS if p.name == "alerts.test.yml")
    (tests_dir / alerts_test.name).write_text(alerts_test.read_text())
    result = run([promtool, "test", "rules", str(tests_dir / alerts_test.name)])
    assert result.returncode != 0
    assert "name: one exporter of three down" in result.stdout + result.stderr
