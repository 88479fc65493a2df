"""End to end: recorded Hubble flows -> `netpol-exporter run` -> a real Prometheus (rules/ loaded, 1 s
scrape and evaluation) -> a real Alertmanager (rules/alertmanager/alertmanager.yml, receivers pointed at
a webhook server inside the test).

The recording (data/alerting-recording.hubble.jsonl, made by data/make_alerting_recording.py) is
appended to the exporter's hubble-file step by step, as Cilium would write it: allowed traffic every step
(a worker to the frontend, the metrics scrape on 9090, DNS, ICMP, Prometheus scraping the exporter) and,
in four steps, five client workloads denied a few SYNs each by one policy. The violation must arrive at
the pager with the policy's labels; nothing may page for the allowed traffic. NetworkPolicyViolation's
`for: 2m` sets the pace: about two and a half minutes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.promstack import (
    Alertmanager,
    Exporter,
    Prometheus,
    WebhookReceiver,
    require_tool,
    wait_until,
    webhook_receivers,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
RECORDING = Path(__file__).parent / "data" / "alerting-recording.hubble.jsonl"
RULE_FILES = sorted((REPO / "rules").glob("*.yml"))
ALERTMANAGER_CONFIG = REPO / "rules" / "alertmanager" / "alertmanager.yml"
JOB = "netpol-exporter"
STEP_SECONDS = 2.0  # wall time per recorded step: two scrapes see every increment
PAGE_TIMEOUT = 240.0  # the violation pages about 2m10s after its drops

POLICY = "temporal/deny-clients-to-history"
CLIENTS = ["temporal-clients/admin-console", "temporal-clients/batch-client", "temporal-clients/cron-client",
           "temporal-clients/report-client", "temporal-clients/sdk-client"]


def recorded_steps() -> list[list[str]]:
    """The recording's lines grouped by their 10 s step (the envelope `time`)."""
    steps: dict[str, list[str]] = {}
    for line in RECORDING.read_text().splitlines():
        stamp = json.loads(line)["time"]
        steps.setdefault(stamp[:18], []).append(line)  # "2026-03-02T10:00:1" = one 10 s step
    return list(steps.values())


def prometheus_config(exporter: Exporter, alertmanager: Alertmanager) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager.url.split("//", 1)[1]]}]}]},
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [exporter.url.split("//", 1)[1]]}]}],
    }


def alertmanager_config(receiver: WebhookReceiver) -> dict[str, Any]:
    config = webhook_receivers(yaml.safe_load(ALERTMANAGER_CONFIG.read_text()), receiver.url)
    config["route"]["group_wait"] = "1s"  # the example waits 30s to batch a first notification
    return config


def test_violation_pages_and_allowed_traffic_does_not(
    tmp_path: Path,
    exporter_factory: Callable[..., Exporter],
    prometheus_factory: Callable[..., Prometheus],
    alertmanager_factory: Callable[..., Alertmanager],
    webhook_receiver: WebhookReceiver,
) -> None:
    require_tool("prometheus")
    require_tool("alertmanager", "prometheus-alertmanager")
    events = tmp_path / "events.log"
    events.write_text("")
    exporter = exporter_factory("--source", f"hubble-file:{events}", "--no-kubernetes",
                                "--state-dir", str(tmp_path / "state"))
    alertmanager = alertmanager_factory(alertmanager_config(webhook_receiver))
    prometheus = prometheus_factory(prometheus_config(exporter, alertmanager), RULE_FILES)
    wait_until(lambda: prometheus.targets_up(JOB), 30, what="Prometheus to scrape the exporter")
    groups = {g["name"] for g in prometheus.rule_groups()}
    assert groups == {"netpol-exporter.flows", "netpol-exporter.exporter", "netpol-exporter.alerts"}

    # Replay the recording as Cilium writes its exporter file.
    started = time.monotonic()
    for lines in recorded_steps():
        with events.open("a") as out:
            out.write("\n".join(lines) + "\n")
        time.sleep(STEP_SECONDS)
        exporter.process.check_running()

    def paged() -> list[dict[str, Any]]:
        exporter.process.check_running()
        return [a for a in webhook_receiver.alerts("pager") if a["labels"]["alertname"] == "NetworkPolicyViolation"]

    pages = wait_until(paged, PAGE_TIMEOUT - (time.monotonic() - started), interval=1.0,
                       what=f"NetworkPolicyViolation at the pager (Prometheus alerts: {prometheus.alerts()})")
    page = pages[0]
    assert page["status"] == "firing"
    assert page["labels"] == {"alertname": "NetworkPolicyViolation", "severity": "critical", "policy": POLICY}
    assert page["annotations"]["summary"] == f"Network policy {POLICY} is denying traffic"
    description = page["annotations"]["description"]
    for client in CLIENTS:  # who was denied what
        assert f"{client} → temporal/temporal-history:7235/TCP" in description, description
    assert page["annotations"]["runbook_url"].endswith("docs/runbook.md#networkpolicyviolation")

    # The exporter counted the recording exactly: 20 denied packets (verdict + drop-event pairs counted once).
    assert float(prometheus.query(f'sum(networkpolicy_dropped_packets_total{{job="{JOB}"}})')[0]["value"][1]) == 20
    # ... spread so thinly that the seed's per-series rule would never have fired.
    per_series = prometheus.query(f'max(increase(networkpolicy_dropped_packets_total{{job="{JOB}"}}[5m]))')
    assert float(per_series[0]["value"][1]) <= 10

    # The allowed traffic reached the rules (each port seen growing), and none of it pages or is pending.
    seen = prometheus.query("sum by (destination_port, protocol) (flow:networkpolicy_allowed_packets:increase5m) > 0")
    assert {(s["metric"].get("destination_port", ""), s["metric"]["protocol"]) for s in seen} == {
        ("7233", "TCP"), ("9090", "TCP"), ("53", "UDP"), ("", "ICMPv4"), ("10215", "TCP")}
    assert prometheus.query('count_over_time(ALERTS{alertname="UnexpectedNetworkTraffic"}[10m])') == []
    assert prometheus.query("flow:networkpolicy_allowed_packets_unexpected_port:increase5m") == []
    assert {a["labels"]["alertname"] for a in webhook_receiver.alerts("pager")} == {"NetworkPolicyViolation"}
    assert [a for a in prometheus.alerts() if a["labels"]["alertname"] != "NetworkPolicyViolation"] == []
