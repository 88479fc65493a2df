"""`netpol-exporter run --kubeconfig` as a subprocess against the fake API server."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube.cluster import populate
from tests.kube.fake_apiserver import FakeAPIServer
from tests.service.procs import Exporter, poll, sample

FIXTURES = Path(__file__).parent / "fixtures"
WEB_DROP = {"policy": "shop/web-ingress", "direction": "ingress", "source": "monitoring/prometheus",
            "source_namespace": "monitoring", "destination": "shop/storefront", "destination_namespace": "shop",
            "destination_port": "8080", "protocol": "TCP", "reason": "POLICY_DENIED"}


@pytest.fixture
def server() -> Iterator[FakeAPIServer]:
    srv = FakeAPIServer()
    populate(srv.cluster)
    srv.start()
    yield srv
    srv.stop()


def readyz(exporter: Exporter) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(exporter.url + "/readyz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_run_enriches_and_survives_an_api_outage(server: FakeAPIServer, tmp_path: Path) -> None:
    flows = tmp_path / "events.log"
    flows.write_bytes((FIXTURES / "default_deny.jsonl").read_bytes())
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    exporter = Exporter(["run", "--source", f"hubble-file:{flows}", "--listen", "127.0.0.1:0",
                         "--kubeconfig", str(kubeconfig)], env={"KUBERNETES_SERVICE_HOST": ""})
    try:
        # start() waited for the sync: even the first lines of the file are attributed
        poll(lambda: sample(exporter.get("/metrics"), "networkpolicy_dropped_packets_total", **WEB_DROP) == 1)
        text = exporter.get("/metrics")
        rv = server.cluster.objects["networkpolicies"][("shop", "web-ingress")]["metadata"]["resourceVersion"]
        assert (f'networkpolicy_info{{policy="shop/web-ingress",kind="NetworkPolicy",policy_namespace="shop",'
                f'policy_name="web-ingress",resource_version="{rv}",generation="1"}} 1') in text
        assert sample(text, "networkpolicy_dropped_packets_total", policy="shop/default-deny-all",
                      direction="egress", source="", source_namespace="", destination="", destination_namespace="",
                      destination_port="", protocol="", reason="POLICY_DENIED") == 0
        status, body = readyz(exporter)
        assert status == 200 and body["kubernetes"]["synced"] and body["kubernetes"]["connected"]

        server.stop()  # the API server goes away: still ready, outage visible
        poll(lambda: sample(exporter.get("/metrics"), "netpol_exporter_kubernetes_watch_up", kind="pods") == 0)
        status, body = readyz(exporter)
        assert status == 200 and body["kubernetes"]["synced"] and not body["kubernetes"]["connected"]
        assert any(entry.get("msg", "").startswith("kubernetes pods:") for entry in exporter.logs)
        server.start()
        poll(lambda: sample(exporter.get("/metrics"), "netpol_exporter_kubernetes_watch_up", kind="pods") == 1,
             timeout=20)
    finally:
        exporter.proc.send_signal(signal.SIGTERM)
        assert exporter.wait_exit(15) == 0
