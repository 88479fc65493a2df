"""scripts/gen_prometheusrule.py: the PrometheusRule in deploy/ matches rules/, options, CRD validity."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.promstack import require_tool
from tests.rules import pack

gen = pack.generator()


def spec_groups(text: str) -> list[dict[str, Any]]:
    document = yaml.safe_load(text)
    assert document["apiVersion"] == "monitoring.coreos.com/v1" and document["kind"] == "PrometheusRule"
    return list(document["spec"]["groups"])


def test_committed_prometheusrule_is_up_to_date() -> None:
    assert pack.PROMETHEUSRULE.read_text() == gen.render(), (
        f"{pack.PROMETHEUSRULE} drifted from rules/: run python scripts/gen_prometheusrule.py")


def test_check_mode_reports_drift(tmp_path: Path) -> None:
    script = pack.REPO / "scripts" / "gen_prometheusrule.py"
    output = tmp_path / "prometheusrule.yaml"
    output.write_text(gen.render())
    ok = subprocess.run([sys.executable, script, "--check", "--output", output], capture_output=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    output.write_text(gen.render().replace("> 10", "> 11"))
    stale = subprocess.run([sys.executable, script, "--check", "--output", output], capture_output=True,
                           text=True, timeout=60)
    assert stale.returncode == 1
    assert "out of date" in stale.stderr


def test_default_output_holds_the_rule_files_groups_unchanged() -> None:
    source = [group for path in gen.rule_files() for group in gen.load_groups(path)]
    assert spec_groups(gen.render()) == source
    assert [g["name"] for g in source][-1] == "netpol-exporter.alerts"  # recordings before the alerts


def test_job_selector_is_rewritten_everywhere(tmp_path: Path) -> None:
    selector = 'job=~"netpol|kube-system/netpol-exporter"'
    text = gen.render(gen.Options(job_selector=selector))
    assert 'job="netpol-exporter"' not in text
    in_rules = sum(str(v).count('job="netpol-exporter"') for r in pack.rules()
                   for v in [r["expr"], *(r.get("annotations") or {}).values()])
    assert text.count(selector) == in_rules > 10
    # Still valid for Prometheus.
    promtool = require_tool("promtool")
    rules_file = tmp_path / "generated.rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": spec_groups(text)}))
    result = subprocess.run([promtool, "check", "rules", rules_file], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_expected_ports_override_and_format() -> None:
    holder = next(r for r in pack.recordings() if r["record"] == gen.EXPECTED_PORTS_RECORD)
    # The generator writes the rule exactly as rules/ spells it, so an override only changes the ports.
    assert gen.expected_ports_expr(gen.ports_in_expr(holder["expr"])) == holder["expr"]
    groups = spec_groups(gen.render(gen.Options(expected_ports=[53, 8443])))
    rule = next(r for g in groups for r in g["rules"] if r.get("record") == gen.EXPECTED_PORTS_RECORD)
    assert gen.ports_in_expr(rule["expr"]) == [53, 8443]


def test_labels_name_namespace_and_runbook_base() -> None:
    text = gen.render(gen.Options(name="np-rules", namespace="monitoring", labels={"release": "prom"},
                                  runbook_base_url="https://runbooks.example.org/netpol.md/"))
    document = yaml.safe_load(text)
    assert document["metadata"] == {"name": "np-rules", "namespace": "monitoring", "labels": {
        "app.kubernetes.io/name": "netpol-exporter", "app.kubernetes.io/component": "alerting", "release": "prom"}}
    urls = [r["annotations"]["runbook_url"] for g in spec_groups(text) for r in g["rules"] if "alert" in r]
    assert urls and all(u.startswith("https://runbooks.example.org/netpol.md#") for u in urls)


@pytest.mark.parametrize(("argv", "message"), [
    (["--job-selector", "netpol-exporter"], "--job-selector"),
    (["--expected-ports", "53,http"], "--expected-ports"),
    (["--expected-ports", "70000"], "--expected-ports"),
    (["--label", "release"], "--label"),
])
def test_bad_options_are_named(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = gen.main([*argv, "--stdout"])
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err


def test_bad_rule_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("groups:\n  - rules: []\n")
    with pytest.raises(gen.RulesError, match=r"broken\.yml: groups\[0\]"):
        gen.render(rules_dir=tmp_path)


# --- the CRD -------------------------------------------------------------------------------------------

def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(pack.CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return dict(version["schema"]["openAPIV3Schema"])


def pruned_fields(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    """Fields the API server would silently drop (not in a schema without additionalProperties)."""
    found = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key in schema["properties"]:
                found += pruned_fields(item, schema["properties"][key], f"{path}.{key}")
            elif "additionalProperties" not in schema and path != "$":
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += pruned_fields(item, schema["items"], f"{path}[{index}]")
    return found


def crd_errors(document: dict[str, Any]) -> list[str]:
    import jsonschema

    schema = crd_schema()
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    return errors + [f"{p}: unknown field" for p in pruned_fields(document, schema)]


def test_generated_prometheusrule_matches_the_crd() -> None:
    document = yaml.safe_load(pack.PROMETHEUSRULE.read_text())
    assert crd_errors(document) == []


def test_crd_validation_rejects_a_broken_rule() -> None:
    document = yaml.safe_load(pack.PROMETHEUSRULE.read_text())
    broken = copy.deepcopy(document)
    rule = broken["spec"]["groups"][-1]["rules"][0]
    rule["for"] = "2 minutes"
    rule["severity"] = "critical"  # belongs under labels
    errors = crd_errors(broken)
    assert any("for" in e and "does not match" in e for e in errors), errors
    assert any(e.endswith(".severity: unknown field") for e in errors), errors
