"""`netpol-exporter check`: output, exit codes, and errors that name file, line and path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.cli import main

MODEL = """\
namespaces:
  app: {team: a}
pods:
- {name: web, namespace: app, labels: {role: web}, ip: 10.0.0.1, ports: [{name: http, port: 8080}]}
- {name: client, namespace: app, labels: {role: client}, ip: 10.0.0.2}
policies:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: web, namespace: app}
  spec:
    podSelector: {matchLabels: {role: web}}
    ingress:
    - from: [{podSelector: {matchLabels: {role: client}}}]
      ports: [{port: http}]
probes:
- {from: app/client, to: app/web, port: http, expect: allow}
- {from: app/client, to: app/web, port: 9090, expect: deny}
- {from: 203.0.113.5, to: app/web, port: 8080, expect: deny}
- {from: 10.0.0.2, to: app/web, port: 8080}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_all_expectations_hold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "m.yaml", MODEL)
    assert main(["check", str(model)]) == 0
    out = capsys.readouterr().out
    assert "app/client -> app/web TCP/http(8080)" in out
    assert "allowed by app/web" in out
    assert "denied: isolated by app/web" in out
    assert "outside cluster" in out
    assert "4 probes: 3 as expected, 0 not, 1 unchecked" in out


def test_a_failed_expectation_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "m.yaml", MODEL.replace("port: 9090, expect: deny", "port: 9090, expect: allow"))
    assert main(["check", str(model)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "m.yaml", MODEL)
    assert main(["check", str(model), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    first = doc["probes"][0]
    assert first["port"] == 8080 and first["port_name"] == "http" and first["verdict"] == "allow"
    assert first["ingress"] == {"isolated": True, "isolating": ["app/web"], "allowing": ["app/web"], "allowed": True,
                                "denying": [], "undecided": [], "outcome": "allow"}
    assert first["egress"] == {"isolated": False, "isolating": [], "allowing": [], "allowed": True,
                               "denying": [], "undecided": [], "outcome": "allow"}
    assert doc["probes"][2]["egress"] is None
    assert (doc["passed"], doc["failed"]) == (3, 0)


def test_policies_from_files_and_folders_are_added(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "m.yaml", MODEL)
    folder = tmp_path / "pols"
    folder.mkdir()
    write(
        folder,
        "deny.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: app}\n"
        "spec: {podSelector: {}, policyTypes: [Egress]}\n",
    )
    assert main(["check", str(model), "--policies", str(folder)]) == 1  # client egress now denied
    captured = capsys.readouterr()
    assert "warning: not policies, ignored: 1 ConfigMap" in captured.err
    assert "denied: isolated by app/deny-all" in captured.out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MODEL.replace("port: http}]", "port: http, endPort: 9000}]"),
            ["m.yaml:", "policies[0].spec.ingress[0].ports[0].endPort"],
        ),
        (MODEL.replace("to: app/web, port: 9090", "to: app/nope, port: 9090"), ["m.yaml:17", "probes[1]", "app/nope"]),
        (MODEL.replace("ip: 10.0.0.1", "ip: 10.0.0.999"), ["m.yaml:4", "pods[0].ip"]),
        (
            MODEL.replace("port: http, expect: allow", "port: grpc, expect: allow"),
            ["probes[0]", "no container port named 'grpc'"],
        ),
        (MODEL.replace("expect: deny}", "expect: maybe}", 1), ["probes[1].expect", "allow or deny"]),
        ("pods: [\n  {name: x\n", ["m.yaml:", "invalid YAML"]),
        ("probes: {}\n", ["m.yaml:1", "probes: expected a list"]),
    ],
)
def test_invalid_input_exits_2_naming_file_and_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    model = write(tmp_path, "m.yaml", text)
    assert main(["check", str(model)]) == 2
    err = capsys.readouterr().err
    for part in expected:
        assert part in err


def test_invalid_policy_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write(tmp_path, "m.yaml", MODEL)
    bad = write(
        tmp_path,
        "bad.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad, namespace: app}\n"
        "spec:\n  podSelector: {}\n  ingress:\n  - from:\n    - {}\n",
    )
    assert main(["check", str(model), "--policies", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:8" in err and "app/bad" in err and "spec.ingress[0].from[0]" in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err
