"""Every rendered object validates against its schema.

Kubernetes kinds: kubernetes-validate's strict schemas (unknown fields are errors) for the oldest and
the newest Kubernetes minor this deploy supports. Prometheus-operator kinds: the CRDs' openAPIV3Schema
from tests/upstream/schemas/prometheus-operator (operator 0.93.0). CiliumNetworkPolicy: no schema ships
offline here, so its structure is checked field by field.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.manifests import UPSTREAM, Obj, Rendered, ident, load_yaml

KUBERNETES_VERSIONS = ("1.31.0", kubernetes_validate.latest_version())
CRD_FILES = {
    "ServiceMonitor": "crd_servicemonitors.yaml",
    "PrometheusRule": "crd_prometheusrules.yaml",
    "PodMonitor": "crd_podmonitors.yaml",
}
NOT_BUILT_IN = {"monitoring.coreos.com", "cilium.io"}


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields a structural schema does not declare: the API server would silently prune them (a typo)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if properties is not None and key in properties:
                found += unknown_fields(item, properties[key], where)
            elif isinstance(extra, dict):
                found += unknown_fields(item, extra, where)
            elif properties is not None and extra is not True:
                found.append(where)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{path}[{index}]")
    return found


def _group(obj: Obj) -> str:
    api_version: str = obj["apiVersion"]
    return api_version.split("/")[0] if "/" in api_version else ""


@cache
def _crd_schema(kind: str, version: str) -> dict[str, Any]:
    path = UPSTREAM / "schemas" / "prometheus-operator" / CRD_FILES[kind]
    crd = load_yaml(path)
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"{path.name}: no version {version}")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_objects_validate(kustomization: Rendered, version: str) -> None:
    errors = []
    for obj in kustomization.objects:
        if _group(obj) in NOT_BUILT_IN:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.absolute_path) or "(top)"
            errors.append(f"{ident(obj)} at {where}: {exc.message}")
    assert not errors, f"{kustomization.name} against Kubernetes {version}:\n" + "\n".join(errors)


def test_monitoring_objects_validate_against_the_crds(kustomization: Rendered) -> None:
    monitoring = [o for o in kustomization.objects if _group(o) == "monitoring.coreos.com"]
    assert monitoring, f"{kustomization.name}: no ServiceMonitor/PrometheusRule rendered"
    errors = []
    for obj in monitoring:
        assert obj["kind"] in CRD_FILES, f"{ident(obj)}: no CRD schema known for this kind"
        schema = _crd_schema(obj["kind"], obj["apiVersion"].split("/")[1])
        validator = jsonschema.Draft7Validator(schema)
        for error in validator.iter_errors(obj):
            where = ".".join(str(p) for p in error.absolute_path) or "(top)"
            errors.append(f"{ident(obj)} at {where}: {error.message}")
        errors += [f"{ident(obj)} at {where}: unknown field" for where in unknown_fields(obj, schema)]
    assert not errors, "\n".join(errors)


def test_cilium_network_policies_are_well_formed(kustomization: Rendered) -> None:
    for obj in kustomization.kind("CiliumNetworkPolicy"):
        assert obj["apiVersion"] == "cilium.io/v2", ident(obj)
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}, ident(obj)
        spec = obj["spec"]
        assert set(spec) <= {"endpointSelector", "ingress", "egress", "ingressDeny", "egressDeny", "description"}
        assert spec["endpointSelector"].get("matchLabels"), f"{ident(obj)}: selects every endpoint"
        for rule in spec.get("egress", []):
            assert set(rule) <= {"toEntities", "toEndpoints", "toCIDR", "toCIDRSet", "toPorts", "toServices"}
            for entity in rule.get("toEntities", []):
                assert entity in {"kube-apiserver", "host", "remote-node", "world", "cluster", "health",
                                  "init", "ingress", "unmanaged", "all"}, f"{ident(obj)}: unknown entity {entity}"
            for port_rule in rule.get("toPorts", []):
                for port in port_rule["ports"]:
                    assert isinstance(port["port"], str) and port["port"].isdigit(), f"{ident(obj)}: {port}"
                    assert port.get("protocol", "ANY") in {"TCP", "UDP", "SCTP", "ANY"}, f"{ident(obj)}: {port}"
