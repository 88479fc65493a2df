"""The example Alertmanager configuration: amtool checks, routing of every alert, inhibitions for real."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.e2e.promstack import Alertmanager, require_tool, webhook_receivers
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


def inhibition_states(am: Alertmanager, alerts: list[dict[str, Any]],
                      expected: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """Post `alerts`; each one's state keyed by (alertname, instance+source), once it equals `expected` in two
    reads in a row, or as last read after 20 s. Alertmanager adds a posted alert to its inhibitions' source
    cache asynchronously: a target read before that shows active, so one read is not enough either way."""
    am.post_alerts(alerts)
    last: dict[tuple[str, str], str] = {}
    matched = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        last = {(a["labels"]["alertname"], a["labels"].get("instance", "") + a["labels"].get("source", "")):
                a["status"]["state"] for a in am.alerts()}
        matched = matched + 1 if last == expected else 0
        if matched == 2:
            break
        time.sleep(0.25)
    return last


def drop_alerts() -> list[dict[str, Any]]:
    """One of each alert the exporter's data path feeds (summed per policy or namespace: no instance label)."""
    return [
        alert("NetworkPolicyViolation", policy="temporal/default-deny-all"),
        alert("UnexpectedNetworkTraffic", policy="temporal-dev/dev-relaxed-policy", destination_port="2222"),
        alert("NetworkPolicyDropsAfterChange", policy="temporal/temporal-frontend-policy"),
        alert("NetworkPolicyDeniedShareHigh", namespace="temporal-workers"),
    ]


DROP_ALERT_KEYS = [("NetworkPolicyViolation", ""), ("UnexpectedNetworkTraffic", ""),
                   ("NetworkPolicyDropsAfterChange", ""), ("NetworkPolicyDeniedShareHigh", "")]
INSTANCES = ("n1:10215", "n2:10215", "n3:10215")


def real_alertmanager(factory: Callable[..., Alertmanager], config: dict[str, Any] | None = None) -> Alertmanager:
    config = config or yaml.safe_load(pack.ALERTMANAGER_CONFIG.read_text())
    return factory(webhook_receivers(config, "http://127.0.0.1:9"))


def test_inhibitions_in_a_real_alertmanager(alertmanager_factory: Callable[..., Alertmanager]) -> None:
    """One DaemonSet pod of three down (n1): its own alerts are held back, the drop alerts are not."""
    expected = {
        ("NetpolExporterDown", "n1:10215"): "active",
        # n2 and n3 still report: the drop alerts (no instance label) keep paging.
        **dict.fromkeys(DROP_ALERT_KEYS, "active"),
        # The down exporter's own health alerts, on the same instance only. (n1's suppressed FlowsStopped also
        # shows that NetpolExporterDown reached the inhibitions, so the drop alerts' "active" is final.)
        ("NetpolExporterFlowsStopped", "n1:10215hubble-file:/a"): "suppressed",
        ("NetpolExporterFlowsStopped", "n2:10215hubble-file:/a"): "active",
        ("NetpolExporterHubbleLostEvents", "n3:10215hubble-file:/a"): "active",
        # A disconnected source explains its own silence, not another source's.
        ("NetpolExporterSourceDown", "n2:10215calico-stdin"): "active",
        ("NetpolExporterFlowsStopped", "n2:10215calico-stdin"): "suppressed",
        ("NetpolExporterSeriesCapReached", "n2:10215"): "active",
        ("NetpolExporterSeriesCapNear", "n2:10215"): "suppressed",
    }
    am = real_alertmanager(alertmanager_factory)
    assert inhibition_states(am, [
        alert("NetpolExporterDown", job="netpol-exporter", instance="n1:10215"),
        *drop_alerts(),
        alert("NetpolExporterFlowsStopped", job="netpol-exporter", instance="n1:10215", source="hubble-file:/a"),
        alert("NetpolExporterFlowsStopped", job="netpol-exporter", instance="n2:10215", source="hubble-file:/a"),
        alert("NetpolExporterSourceDown", job="netpol-exporter", instance="n2:10215", source="calico-stdin"),
        alert("NetpolExporterFlowsStopped", job="netpol-exporter", instance="n2:10215", source="calico-stdin"),
        alert("NetpolExporterSeriesCapReached", job="netpol-exporter", instance="n2:10215", family="f"),
        alert("NetpolExporterSeriesCapNear", job="netpol-exporter", instance="n2:10215", family="f"),
        alert("NetpolExporterHubbleLostEvents", job="netpol-exporter", instance="n3:10215", source="hubble-file:/a"),
    ], expected) == expected


def test_every_exporter_down_inhibits_the_drop_alerts(alertmanager_factory: Callable[..., Alertmanager]) -> None:
    """All three down: NetpolExporterAllDown holds the drop alerts back; every instance still pages on its own."""
    expected = {
        **{("NetpolExporterDown", i): "active" for i in INSTANCES},
        ("NetpolExporterAllDown", ""): "active",
        **dict.fromkeys(DROP_ALERT_KEYS, "suppressed"),
        ("NetpolExporterFlowsStopped", "n3:10215hubble-file:/a"): "suppressed",
    }
    am = real_alertmanager(alertmanager_factory)
    assert inhibition_states(am, [
        *(alert("NetpolExporterDown", job="netpol-exporter", instance=i) for i in INSTANCES),
        alert("NetpolExporterAllDown"),
        *drop_alerts(),
        alert("NetpolExporterFlowsStopped", job="netpol-exporter", instance="n3:10215", source="hubble-file:/a"),
    ], expected) == expected


def test_inhibition_test_catches_a_per_instance_source(alertmanager_factory: Callable[..., Alertmanager]) -> None:
    """The review's bug: with NetpolExporterDown as the drop alerts' inhibition source, one instance of three
    down silences them cluster-wide, which the first test's expectation rules out."""
    config = yaml.safe_load(pack.ALERTMANAGER_CONFIG.read_text())
    drop_rule = next(r for r in config["inhibit_rules"] if "NetworkPolicyViolation" in str(r["target_matchers"]))
    drop_rule["source_matchers"] = ['alertname="NetpolExporterDown"']
    am = real_alertmanager(alertmanager_factory, config)
    expected = {("NetpolExporterDown", "n1:10215"): "active", **dict.fromkeys(DROP_ALERT_KEYS, "suppressed")}
    assert inhibition_states(am, [alert("NetpolExporterDown", job="netpol-exporter", instance="n1:10215"),
                                  *drop_alerts()], expected) == expected
