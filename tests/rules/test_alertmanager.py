"""The example Alertmanager configuration: amtool checks, routing of every alert, inhibitions for real."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.e2e.promstack import Alertmanager, require_tool, wait_until, webhook_receivers
from tests.rules import pack

RECEIVER_BY_SEVERITY = {"critical": "pager", "warning": "tickets", "info": "null"}


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_tool("amtool")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60)


def routes_test(receiver: str, labels: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return amtool("config", "routes", "test", f"--config.file={pack.ALERTMANAGER_CONFIG}",
                  f"--verify.receivers={receiver}", *(f"{k}={v}" for k, v in labels.items()))


def test_check_config() -> None:
    result = amtool("check-config", str(pack.ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "4 inhibit rules" in result.stdout


@pytest.mark.parametrize("rule", pack.alerts(), ids=lambda r: r["alert"])
def test_every_alert_routes_by_its_severity(rule: dict[str, Any]) -> None:
    severity = rule["labels"]["severity"]
    labels = {"alertname": rule["alert"], "severity": severity, "policy": "temporal/default-deny-all"}
    result = routes_test(RECEIVER_BY_SEVERITY[severity], labels)
    assert result.returncode == 0, result.stdout + result.stderr


def test_routes_test_can_fail() -> None:
    result = routes_test("tickets", {"alertname": "NetworkPolicyViolation", "severity": "critical"})
    assert result.returncode != 0
    assert "pager" in result.stdout


def test_unlabelled_alert_gets_a_ticket() -> None:
    assert routes_test("tickets", {"alertname": "Something"}).returncode == 0


def test_every_inhibition_names_alerts_of_the_pack() -> None:
    config = yaml.safe_load(pack.ALERTMANAGER_CONFIG.read_text())
    names = {rule["alert"] for rule in pack.alerts()}
    for inhibit in config["inhibit_rules"]:
        for matcher in [*inhibit["source_matchers"], *inhibit["target_matchers"]]:
            value = matcher.split("=", 1)[1].lstrip("~").strip('"')
            for name in value.split("|"):
                assert name in names, f"inhibit rule names {name!r}, which is not an alert of rules/"


def alert(name: str, **labels: str) -> dict[str, Any]:
    severity = next(r["labels"]["severity"] for r in pack.alerts() if r["alert"] == name)
    return {"labels": {"alertname": name, "severity": severity, **labels}, "annotations": {}}


def test_inhibitions_in_a_real_alertmanager(alertmanager_factory: Callable[..., Alertmanager]) -> None:
    config = webhook_receivers(yaml.safe_load(pack.ALERTMANAGER_CONFIG.read_text()), "http://127.0.0.1:9")
    am = alertmanager_factory(config)
    am.post_alerts([
        alert("NetpolExporterDown", job="netpol-exporter", instance="n1:10215"),
        alert("NetworkPolicyViolation", policy="temporal/default-deny-all"),
        alert("UnexpectedNetworkTraffic", policy="temporal-dev/dev-relaxed-policy", destination_port="2222"),
        alert("NetpolExporterFlowsStopped", job="netpol-exporter", instance="n1:10215", source="hubble-file:/a"),
        alert("NetpolExporterFlowsStopped", job="netpol-exporter", instance="n2:10215", source="hubble-file:/a"),
        alert("NetpolExporterSourceDown", job="netpol-exporter", instance="n2:10215", source="calico-stdin"),
        alert("NetpolExporterFlowsStopped", job="netpol-exporter", instance="n2:10215", source="calico-stdin"),
        alert("NetpolExporterSeriesCapReached", job="netpol-exporter", instance="n2:10215", family="f"),
        alert("NetpolExporterSeriesCapNear", job="netpol-exporter", instance="n2:10215", family="f"),
    ])

    def states() -> dict[tuple[str, str], str] | None:
        found = {(a["labels"]["alertname"], a["labels"].get("instance", "") + a["labels"].get("source", "")):
                 a["status"]["state"] for a in am.alerts()}
        return found if len(found) == 9 and "unprocessed" not in found.values() else None

    assert wait_until(states, 20, what="Alertmanager to process the alerts") == {
        ("NetpolExporterDown", "n1:10215"): "active",
        # The exporter is down: flow alerts are partial, held back (cluster-wide).
        ("NetworkPolicyViolation", ""): "suppressed",
        ("UnexpectedNetworkTraffic", ""): "suppressed",
        # Its own health alerts, on the same instance only.
        ("NetpolExporterFlowsStopped", "n1:10215hubble-file:/a"): "suppressed",
        ("NetpolExporterFlowsStopped", "n2:10215hubble-file:/a"): "active",
        # A disconnected source explains its own silence, not another source's.
        ("NetpolExporterSourceDown", "n2:10215calico-stdin"): "active",
        ("NetpolExporterFlowsStopped", "n2:10215calico-stdin"): "suppressed",
        ("NetpolExporterSeriesCapReached", "n2:10215"): "active",
        ("NetpolExporterSeriesCapNear", "n2:10215"): "suppressed",
    }
