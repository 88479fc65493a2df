"""Upstream Kubernetes e2e network-policy cases (tests/netpol/e2e/*.model.yaml) through `check`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from exporter.netpol.check_command import run_probes
from exporter.netpol.modelfile import load_model

E2E = Path(__file__).parent / "e2e"
MODELS = sorted(E2E.glob("*.model.yaml"))


def test_the_suite_is_there() -> None:
    assert len(MODELS) >= 50


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name.removesuffix(".model.yaml"))
def test_upstream_case(path: Path) -> None:
    model = load_model(path)
    results = run_probes(model)
    assert results and all(r.probe.expect is not None for r in results)
    failures = [f"{r.probe.where}: got {r.outcome}, expected {r.probe.expect}" for r in results if not r.ok]
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name.removesuffix(".model.yaml"))
def test_case_can_fail_without_its_policies(path: Path) -> None:
    """Guard against vacuous models: where a case expects a denial, removing the policies breaks it."""
    model = load_model(path)
    if all(p.expect == "allow" for p in model.probes):
        pytest.skip("everything allowed: nothing to take away")
    stripped = replace(model, cluster=replace(model.cluster, policies=[]))
    assert any(r.ok is False for r in run_probes(stripped))
