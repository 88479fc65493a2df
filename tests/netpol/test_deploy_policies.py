"""The shipped policies (deploy/network-policies): lint-clean, and `check` agrees with the models."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.netpol.check_command import run_probes
from exporter.netpol.lint import lint
from exporter.netpol.loading import collect_policies, documents, load_policies
from exporter.netpol.modelfile import load_model

from .helpers import seed_policies

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "network-policies"
MODELS = Path(__file__).parent / "models"
TARGETS = {"base": DEPLOY / "base", "dev": DEPLOY / "overlays" / "dev", "prod": DEPLOY / "overlays" / "prod"}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_lint_passes_with_only_acknowledged_findings(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    loaded = load_policies([TARGETS[target]])
    assert not loaded.invalid and not loaded.notes
    findings = lint(loaded)
    assert [f for f in findings if not f.suppressed] == []
    acknowledged = {(f.check, f.policy) for f in findings}
    expected = {
        ("open-peers", "temporal/temporal-frontend-policy"),
        ("open-peers", "ingress-nginx/ingress-controller-policy"),
    }
    if target == "dev":
        expected.add(("open-peers", "temporal-dev/dev-relaxed-policy"))
    assert acknowledged == expected
    assert main(["lint", "--policies", str(TARGETS[target])]) == 0


@pytest.mark.parametrize(
    ("model", "target"),
    [
        ("temporal.model.yaml", "base"),
        ("temporal.model.yaml", "prod"),
        ("dev.model.yaml", "dev"),
        ("prod.model.yaml", "prod"),
    ],
)
def test_check_agrees_with_the_models(model: str, target: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(MODELS / model), "--policies", str(TARGETS[target])]) == 0
    out = capsys.readouterr().out
    assert " 0 not," in out


def test_the_seeds_five_cases_are_in_the_model() -> None:
    probes = load_model(MODELS / "temporal.model.yaml").probes
    seed_cases = {(p.source, p.destination, p.port, p.expect) for p in probes[:5]}
    assert seed_cases == {
        ("network-policy-test/test-client", "temporal/frontend", 7233, "allow"),
        ("network-policy-test/test-client", "temporal/history", 7235, "deny"),
        ("network-policy-test/test-worker", "temporal/frontend", 7233, "allow"),
        ("network-policy-test/test-client", "8.8.8.8", 53, "allow"),
        ("network-policy-test/test-client", "databases/postgresql", 5432, "deny"),
    }
    assert len(probes) >= 40


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_kustomize_renders_the_same_policies(target: str, tmp_path: Path) -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(TARGETS[target])], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    (tmp_path / "rendered.yaml").write_text(rendered)
    from_kubectl = {lp.policy for lp in load_policies([tmp_path / "rendered.yaml"]).policies}
    direct = {lp.policy for lp in collect_policies(documents([TARGETS[target]])).policies}
    assert from_kubectl == direct and len(direct) >= 19


def test_the_seed_as_written_fails_the_model(tmp_path: Path) -> None:
    """What the fixes are for: with the seed's own policies, monitoring, databases and DNS break."""
    policies = [lp.policy for lp in load_policies([seed_policies(tmp_path)]).policies]
    failed = {
        (r.probe.source, r.probe.destination)
        for r in run_probes(load_model(MODELS / "temporal.model.yaml", policies))
        if r.ok is False
    }
    assert ("temporal-monitoring/prometheus", "temporal/frontend") in failed  # `name` label: no namespace matches
    assert ("temporal/history", "databases/postgresql") in failed
    assert ("databases/postgresql", "kube-system/coredns") in failed  # no DNS
    assert ("198.51.100.20", "temporal-monitoring/grafana") in failed  # `from: []` on Grafana
    # ...while the seed's own five connectivity cases hold either way.
    assert not failed & {
        ("network-policy-test/test-client", "temporal/frontend"),
        ("network-policy-test/test-client", "temporal/history"),
        ("network-policy-test/test-worker", "temporal/frontend"),
        ("network-policy-test/test-client", "8.8.8.8"),
        ("network-policy-test/test-client", "databases/postgresql"),
    }
