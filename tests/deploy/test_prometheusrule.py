"""The PrometheusRule in the base is exactly a fresh generation from rules/ (scripts/gen_prometheusrule.py)."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tests.deploy.manifests import BASE, REPO, Rendered

GENERATOR = REPO / "scripts" / "gen_prometheusrule.py"
COMMITTED = BASE / "prometheusrule.yaml"


def _fresh() -> str:
    assert GENERATOR.is_file(), f"{GENERATOR.relative_to(REPO)} is missing: the PrometheusRule cannot be checked"
    result = subprocess.run([sys.executable, str(GENERATOR), "--stdout"], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode == 0, f"{GENERATOR.name}: {result.stderr.strip()}"
    return result.stdout


def test_committed_rule_is_a_fresh_generation() -> None:
    assert COMMITTED.is_file(), f"{COMMITTED.relative_to(REPO)} is missing: run python3 scripts/gen_prometheusrule.py"
    assert COMMITTED.read_text() == _fresh(), (
        f"{COMMITTED.relative_to(REPO)} is out of date with rules/: run python3 scripts/gen_prometheusrule.py")


def test_rendered_rule_keeps_every_group_and_rule(overlay: Rendered) -> None:
    generated = yaml.safe_load(_fresh())
    [rendered] = overlay.kind("PrometheusRule")
    assert rendered["spec"] == generated["spec"], f"{overlay.name}: kustomize changed the rule groups"
    assert rendered["metadata"]["name"] == generated["metadata"]["name"]
    for key, value in generated["metadata"].get("labels", {}).items():
        assert rendered["metadata"]["labels"].get(key) == value, f"{overlay.name}: label {key}"
