"""`--namespace` for policy files without metadata.namespace (as `kubectl -n`), and `lint` on a folder
with no NetworkPolicy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.cli import main

NO_NAMESPACE = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-ingress}
spec:
  podSelector: {matchLabels: {role: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: client}}}]
"""

MODEL = """\
namespaces:
  shop: {}
pods:
- {name: web, namespace: shop, labels: {role: web}, ip: 10.0.0.1, ports: [{port: 8080}]}
- {name: client, namespace: shop, labels: {role: client}, ip: 10.0.0.2}
- {name: other, namespace: shop, labels: {role: other}, ip: 10.0.0.3}
probes:
- {from: shop/client, to: shop/web, port: 8080, expect: allow}
- {from: shop/other, to: shop/web, port: 8080, expect: deny}
"""


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "web.yaml").write_text(NO_NAMESPACE)
    return folder


def test_lint_assumes_default_and_says_so(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--policies", str(policies)]) == 0
    err = capsys.readouterr().err
    assert "(document 1 web-ingress): no metadata.namespace: assumed namespace default" in err


def test_lint_namespace_flag_sets_it(policies: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--policies", str(policies), "--namespace", "shop", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [] or all(f["policy"].startswith("shop/") for f in json.loads(out))
    assert "assumed namespace shop" in err


def test_a_namespace_in_the_file_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(NO_NAMESPACE.replace("{name: web-ingress}", "{name: web-ingress, namespace: app}"))
    assert main(["lint", "--policies", str(path), "-n", "shop"]) == 0
    assert "assumed" not in capsys.readouterr().err


def test_check_applies_policies_in_the_given_namespace(policies: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.model.yaml"
    model.write_text(MODEL)
    # In namespace default the policy isolates nothing in shop: the deny probe fails.
    assert main(["check", str(model), "--policies", str(policies)]) == 1
    assert "assumed namespace default" in capsys.readouterr().err
    assert main(["check", str(model), "--policies", str(policies), "--namespace", "shop"]) == 0
    out, err = capsys.readouterr()
    assert "assumed namespace shop" in err
    assert "2 probes: 2 as expected" in out


def test_lint_with_no_policy_found_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert main(["lint", "--policies", str(tmp_path)]) == 2
    assert f"no NetworkPolicy found in {tmp_path}" in capsys.readouterr().err
