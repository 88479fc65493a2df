"""The rendered objects agree with each other and with the code they deploy."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from exporter.config import DEFAULT_PORT, load_config
from tests.deploy.manifests import (
    REPO,
    Obj,
    Rendered,
    arg_value,
    containers,
    ident,
    pod_labels,
    pod_spec,
    selector_matches,
)

SOURCE_KIND = {
    "hubble-file": "hubble-file",
    "hubble-relay": "hubble-relay",
    "calico-flowlogs": "calico-file",
    "calico-goldmane": "calico-goldmane-push",
}


def _exporter(overlay: Rendered) -> Obj:
    found = [c for c in containers(overlay.workload()) if c["name"] == "exporter"]
    assert len(found) == 1, f"{overlay.name}: expected one container named exporter"
    return found[0]


def _container_port(container: Obj, name_or_number: Any) -> dict[str, Any]:
    for port in container.get("ports", []):
        if name_or_number in (port.get("name"), port["containerPort"]):
            return dict(port)
    raise AssertionError(f"container {container['name']} has no port {name_or_number!r}")


def _metrics_service(overlay: Rendered) -> Obj:
    found = [s for s in overlay.kind("Service") if any(p.get("name") == "metrics" for p in s["spec"]["ports"])]
    assert len(found) == 1, f"{overlay.name}: expected one Service with a port named metrics"
    return found[0]


def test_metrics_port_is_one_port_everywhere(overlay: Rendered) -> None:
    """Service port `metrics` -> container port `metrics` == --listen port; the ServiceMonitor scrapes it."""
    service = _metrics_service(overlay)
    exporter = _exporter(overlay)
    [service_port] = [p for p in service["spec"]["ports"] if p["name"] == "metrics"]
    container_port = _container_port(exporter, service_port.get("targetPort", service_port["port"]))
    assert container_port["name"] == "metrics"
    assert service_port["port"] == container_port["containerPort"] == DEFAULT_PORT
    [listen] = arg_value(exporter, "--listen") or [f"0.0.0.0:{DEFAULT_PORT}"]
    assert listen.rpartition(":")[2] == str(container_port["containerPort"]), f"{overlay.name}: --listen {listen}"
    for monitor in overlay.kind("ServiceMonitor"):
        assert selector_matches(monitor["spec"]["selector"], service["metadata"].get("labels", {})), ident(monitor)
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"], ident(monitor)


def test_only_the_metrics_service_is_scraped(overlay: Rendered) -> None:
    [monitor] = overlay.kind("ServiceMonitor")
    selector = monitor["spec"]["selector"]
    scraped = [s for s in overlay.kind("Service") if selector_matches(selector, s["metadata"].get("labels", {}))]
    assert [s["metadata"]["name"] for s in scraped] == [_metrics_service(overlay)["metadata"]["name"]]


def test_services_and_policies_select_the_exporter_pods(overlay: Rendered) -> None:
    labels = pod_labels(overlay.workload())
    workload = overlay.workload()
    assert selector_matches(workload["spec"]["selector"], labels), f"{ident(workload)}: selector misses its pods"
    for service in overlay.kind("Service"):
        assert selector_matches({"matchLabels": service["spec"]["selector"]}, labels), ident(service)
        for port in service["spec"]["ports"]:
            _container_port(_exporter(overlay), port.get("targetPort", port["port"]))
    for policy in overlay.kind("NetworkPolicy"):
        assert selector_matches(policy["spec"]["podSelector"], labels), ident(policy)
    for policy in overlay.kind("CiliumNetworkPolicy"):
        assert selector_matches(policy["spec"]["endpointSelector"], labels), ident(policy)


def test_probes_hit_the_service_endpoints(overlay: Rendered) -> None:
    exporter = _exporter(overlay)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http = exporter[probe]["httpGet"]
        assert http["path"] == path, f"{overlay.name}: {probe} path"
        assert _container_port(exporter, http["port"])["name"] == "metrics", f"{overlay.name}: {probe} port"


def test_source_matches_the_shape_and_its_port_is_exposed(overlay: Rendered) -> None:
    exporter = _exporter(overlay)
    sources = arg_value(exporter, "--source")
    assert len(sources) == 1, f"{overlay.name}: expected one --source, got {sources}"
    kind, _, rest = sources[0].partition(":")
    assert kind == SOURCE_KIND[overlay.name]
    if kind == "calico-goldmane-push":
        port = int(rest.rpartition(":")[2])
        assert _container_port(exporter, port)["name"] == "push"
        [push_service] = [s for s in overlay.kind("Service") if s["metadata"]["name"].endswith("-push")]
        [service_port] = push_service["spec"]["ports"]
        assert service_port["port"] == port and service_port["targetPort"] == "push"
    if kind in {"hubble-file", "calico-file"}:
        mounts = {m["mountPath"]: m for m in exporter["volumeMounts"]}
        parent = rest.rsplit("/", 1)[0]
        assert parent in mounts, f"{overlay.name}: {rest} is not on a mounted volume"
        assert mounts[parent].get("readOnly") is True, f"{overlay.name}: {rest} is not mounted read-only"


def test_state_dir_is_a_writable_volume(overlay: Rendered) -> None:
    exporter = _exporter(overlay)
    [state_dir] = arg_value(exporter, "--state-dir")
    [mount] = [m for m in exporter["volumeMounts"] if m["mountPath"] == state_dir]
    assert not mount.get("readOnly"), f"{overlay.name}: state dir mounted read-only"
    [volume] = [v for v in pod_spec(overlay.workload())["volumes"] if v["name"] == mount["name"]]
    if overlay.workload()["kind"] == "DaemonSet":
        # Restarts resume where they stopped: the positions live on the node.
        assert volume["hostPath"]["path"].startswith("/var/lib/netpol-exporter/"), f"{overlay.name}: {volume}"
    else:
        assert "emptyDir" in volume, f"{overlay.name}: {volume}"


def test_workload_args_parse_with_the_real_cli(overlay: Rendered) -> None:
    import inspect

    from exporter.cli import build_parser

    args = _exporter(overlay)["args"]
    # build_parser(command) configures only the chosen command (exporter/cli.py imports it lazily).
    parser = build_parser(args[0]) if inspect.signature(build_parser).parameters else build_parser()
    try:
        parsed = parser.parse_args(args)
    except SystemExit:
        pytest.fail(f"{overlay.name}: `netpol-exporter {' '.join(args)}` is rejected by the CLI")
    assert parsed.command == "run" and callable(getattr(parsed, "_main", None))


def test_the_shipped_config_loads(overlay: Rendered, tmp_path: Path) -> None:
    exporter = _exporter(overlay)
    [config_path] = arg_value(exporter, "--config")
    [mount] = [m for m in exporter["volumeMounts"] if config_path.startswith(m["mountPath"] + "/")]
    [volume] = [v for v in pod_spec(overlay.workload())["volumes"] if v["name"] == mount["name"]]
    configmap = overlay.one("ConfigMap", volume["configMap"]["name"])
    key = config_path[len(mount["mountPath"]) + 1:]
    assert key in configmap["data"], f"{overlay.name}: ConfigMap {configmap['metadata']['name']} has no {key}"
    path = tmp_path / key
    path.write_text(configmap["data"][key])
    config = load_config(path, env={})  # raises ConfigError naming the key on a bad value
    assert config.listen.endswith(f":{DEFAULT_PORT}")


def test_image_tag_is_the_package_version(overlay: Rendered) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    image = _exporter(overlay)["image"]
    assert re.fullmatch(r"[\w./-]*netpol-exporter:[\w.-]+", image), image
    assert image.rpartition(":")[2] == version, f"{overlay.name}: image {image}, package {version}"


def test_alert_rules_select_the_job_the_service_monitor_creates(overlay: Rendered) -> None:
    """Prometheus Operator names the job after the Service (no jobLabel set): the rules must say the same."""
    [monitor] = overlay.kind("ServiceMonitor")
    assert "jobLabel" not in monitor["spec"]
    job = _metrics_service(overlay)["metadata"]["name"]
    exprs = [
        rule["expr"] for rule_set in overlay.kind("PrometheusRule")
        for group in rule_set["spec"]["groups"] for rule in group["rules"]
    ]
    jobs = set(re.findall(r'\bjob\s*=~?\s*"([^"]*)"', "\n".join(str(e) for e in exprs)))
    assert jobs, f"{overlay.name}: no rule selects a job"
    assert jobs == {job}, f"{overlay.name}: rules select jobs {sorted(jobs)}, the ServiceMonitor creates job {job!r}"


def test_prometheus_selector_labels_match(overlay: Rendered) -> None:
    """kube-prometheus-stack selects ServiceMonitors and PrometheusRules by the same `release` label."""
    releases = {
        ident(obj): obj["metadata"].get("labels", {}).get("release")
        for obj in overlay.kind("ServiceMonitor") + overlay.kind("PrometheusRule")
    }
    assert len(set(releases.values())) == 1 and None not in releases.values(), releases
