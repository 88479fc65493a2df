"""Cilium's own policy cases (tests/netpol/cilium/*.model.yaml) through `check` and `lint`."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from exporter.netpol.check_command import run_probes
from exporter.netpol.modelfile import load_model

CASES = Path(__file__).parent / "cilium"
MODELS = sorted(CASES.glob("*.model.yaml"))


def test_the_case_set_is_there() -> None:
    assert len(MODELS) >= 12


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name.removesuffix(".model.yaml"))
def test_cilium_case(path: Path) -> None:
    results = run_probes(load_model(path))
    assert results and all(r.probe.expect is not None for r in results)
    failures = [f"{r.probe.where}: got {r.outcome}, expected {r.probe.expect}" for r in results if not r.ok]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name.removesuffix(".model.yaml"))
def test_case_fails_without_its_policies(path: Path) -> None:
    model = load_model(path)
    stripped = replace(model, cluster=replace(model.cluster, policies=[]))
    assert any(r.ok is False for r in run_probes(stripped))


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True, input=stdin,
                          timeout=60, check=False)


def test_check_and_lint_accept_mixed_policy_files_and_stdin(tmp_path: Path) -> None:
    """One multi-document file mixing a NetworkPolicy, a CNP and a CCNP, given on stdin (`-`)."""
    import yaml

    model = yaml.safe_load((CASES / "enable-default-deny-off-beside-networkpolicy.model.yaml").read_text())
    policies = model.pop("policies")
    model_file = tmp_path / "model.yaml"
    model_file.write_text(yaml.safe_dump(model))
    text = yaml.safe_dump_all(policies)
    checked = _cli("check", str(model_file), "--policies", "-", "--json", stdin=text)
    assert checked.returncode == 0, checked.stderr
    doc = json.loads(checked.stdout)
    assert doc["passed"] == len(model["probes"]) and doc["failed"] == 0
    dns = doc["probes"][2]
    assert dns["egress"]["isolating"] == ["isolated/egress-lockdown"]
    assert dns["egress"]["allowing"] == ["intercept-all-dns"]  # a CCNP is named without a namespace
    linted = _cli("lint", "--policies", "-", "--json", stdin=text)
    assert linted.returncode == 0, linted.stderr
    findings = json.loads(linted.stdout)
    l7 = [f for f in findings if f["check"] == "not-evaluated"]
    assert [(f["policy"], f["severity"]) for f in l7] == [("intercept-all-dns", "info")]
    assert "L7" in l7[0]["message"]


def test_lint_passes_the_case_set(tmp_path: Path) -> None:
    """Every model's policies are valid and lint without an error (Cilium parts: `not-evaluated` info)."""
    import yaml

    from exporter.netpol.lint import lint
    from exporter.netpol.loading import load_policies

    not_evaluated = set()
    for path in MODELS:
        file = tmp_path / f"{path.stem}.yaml"
        file.write_text(yaml.safe_dump_all(yaml.safe_load(path.read_text())["policies"]))
        loaded = load_policies([file])
        assert not loaded.invalid, path.name
        findings = lint(loaded)
        assert not [f for f in findings if f.severity == "error"], path.name
        not_evaluated |= {f.policy for f in findings if f.check == "not-evaluated"}
    assert not_evaluated == {"intercept-all-dns"}
