"""Reading NetworkPolicies, CiliumNetworkPolicies and CiliumClusterwideNetworkPolicies from YAML
files, folders, kustomizations and stdin (`-`).

Every problem is reported with the file, the line and the field path inside the object.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from exporter.netpol.cilium import CILIUM_KINDS, CiliumPolicy
from exporter.netpol.cilium_parse import parse_cilium_policy
from exporter.netpol.errors import InputError, PolicyInvalid
from exporter.netpol.policy import NetworkPolicy, parse_policy

AnyPolicy = NetworkPolicy | CiliumPolicy
POLICY_KINDS = ("NetworkPolicy", *CILIUM_KINDS)

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZE_TIMEOUT_S = 60
# libyaml's parser when PyYAML has it (about 10x faster); same nodes and marks.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Document:
    """One YAML document (or one item of a `kind: List`), with where it came from."""

    source: str  # file name
    obj: Any
    node: yaml.Node | None  # for line numbers of fields
    label: str  # e.g. "document 2" or "document 1, items[3]"

    def location(self, path: str = "") -> str:
        """`file:line` of the field at `path` (of the object when the path is not found)."""
        line = node_line(self.node, path) if self.node is not None else None
        return f"{self.source}:{line}" if line else self.source

    def where(self, path: str = "") -> str:
        at = self.location(path)
        meta = self.obj.get("metadata") if isinstance(self.obj, Mapping) else None
        name = ""
        if isinstance(meta, Mapping) and meta.get("name"):
            namespace = meta.get("namespace")
            name = f" {namespace}/{meta['name']}" if namespace else f" {meta['name']}"
        return f"{at} ({self.label}{name}){': ' + path if path else ''}"


def parse_any_policy(obj: Any, default_namespace: str | None = None) -> AnyPolicy:
    """A NetworkPolicy, CNP or CCNP by its `kind` (PolicyInvalid when invalid)."""
    kind = obj.get("kind") if isinstance(obj, Mapping) else None
    if kind in CILIUM_KINDS:
        return parse_cilium_policy(obj, default_namespace)
    return parse_policy(obj, default_namespace)


P = TypeVar("P", NetworkPolicy, CiliumPolicy, AnyPolicy)


@dataclass(frozen=True)
class LoadedPolicy(Generic[P]):
    policy: P
    document: Document


@dataclass
class Loaded:
    policies: list[LoadedPolicy[AnyPolicy]] = field(default_factory=list)
    invalid: list[tuple[Document, PolicyInvalid]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def invalid_messages(self) -> list[str]:
        return [f"{doc.where(err.path)}: {err.message}" for doc, err in self.invalid]


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def node_line(node: yaml.Node | None, path: str) -> int | None:
    """1-based line of the deepest node along `path` (e.g. `spec.ingress[0].from[1]`)."""
    if node is None:
        return None
    best = node
    for name, index in _PATH_TOKEN.findall(path):
        nxt = None
        if name and isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == name), None)
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            nxt = node.value[int(index)]
        if nxt is None:
            break
        node = best = nxt
    return best.start_mark.line + 1


def _documents_from_text(text: str, source: str) -> Iterator[Document]:
    loader = _LOADER(text)
    try:
        number = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            number += 1
            obj = loader.construct_document(node)
            if obj is None:
                continue
            if isinstance(obj, Mapping) and obj.get("kind") == "List" and isinstance(obj.get("items"), list):
                items_node = child_node(node, "items")
                for i, item in enumerate(obj["items"]):
                    item_node = items_node.value[i] if isinstance(items_node, yaml.SequenceNode) else None
                    yield Document(source, item, item_node, f"document {number}, items[{i}]")
            else:
                yield Document(source, obj, node, f"document {number}")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise InputError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    finally:
        loader.dispose()


def child_node(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node of `key` in a YAML mapping node (None when absent or not a mapping)."""
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == key), None)
    return None


def read_documents(path: Path) -> list[Document]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    return list(_documents_from_text(text, str(path)))


def _kustomize(directory: Path) -> list[Document]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise InputError(f"{directory}: is a kustomization; render it with `kubectl kustomize` (kubectl not found)")
    try:
        out = subprocess.run(
            [kubectl, "kustomize", str(directory)],
            capture_output=True,
            text=True,
            timeout=KUSTOMIZE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InputError(f"{directory}: kubectl kustomize timed out") from None
    if out.returncode != 0:
        raise InputError(f"{directory}: kubectl kustomize failed: {out.stderr.strip()}")
    return list(_documents_from_text(out.stdout, f"kustomize:{directory}"))


_PLAIN_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources"}


def _kustomization(directory: Path) -> list[Document]:
    """A kustomization of plain `resources` is read directly; anything else is rendered by kubectl."""
    file = next(directory / k for k in KUSTOMIZATION_FILES if (directory / k).is_file())
    docs = read_documents(file)
    spec = docs[0].obj if len(docs) == 1 else None
    if not isinstance(spec, Mapping) or set(spec) - _PLAIN_KUSTOMIZATION_KEYS:
        return _kustomize(directory)
    resources = spec.get("resources") or []
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise InputError(f"{docs[0].where('resources')}: expected a list of paths")
    if any("://" in r or r.startswith("github.com/") for r in resources):
        return _kustomize(directory)
    return documents(Path(os.path.normpath(directory / r)) for r in resources)


def _stdin_documents() -> list[Document]:
    import sys

    try:
        text = sys.stdin.read()
    except UnicodeDecodeError:
        raise InputError("<stdin>: not UTF-8 text") from None
    return list(_documents_from_text(text, "<stdin>"))


def documents(paths: Iterable[str | Path]) -> list[Document]:
    """Documents of files, folders (*.yaml/*.yml, recursively, sorted), kustomization folders and
    `-` (stdin, read once: `kubectl get -o yaml` or `kubectl kustomize` output)."""
    docs: list[Document] = []
    stdin_read = False
    for raw in paths:
        if str(raw) == "-":
            if not stdin_read:
                docs.extend(_stdin_documents())
                stdin_read = True
            continue
        path = Path(raw)
        if path.is_dir():
            if any((path / k).is_file() for k in KUSTOMIZATION_FILES):
                docs.extend(_kustomization(path))
                continue
            files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            for file in files:
                docs.extend(read_documents(file))
        elif path.is_file():
            docs.extend(read_documents(path))
        else:
            raise InputError(f"{path}: no such file or folder")
    return docs


def collect_policies(docs: Sequence[Document], default_namespace: str | None = None) -> Loaded:
    """Parse the NetworkPolicies, CNPs and CCNPs among `docs`; other kinds are skipped with a note."""
    loaded = Loaded()
    seen: dict[tuple[str, str], Document] = {}
    for doc in docs:
        if not isinstance(doc.obj, Mapping):
            raise InputError(f"{doc.where()}: expected a Kubernetes object, got {type(doc.obj).__name__}")
        kind = doc.obj.get("kind")
        if kind not in POLICY_KINDS:
            loaded.notes.append(f"{doc.where()}: skipped kind {kind or '(none)'}")
            continue
        try:
            policy = parse_any_policy(doc.obj, default_namespace)
        except PolicyInvalid as exc:
            loaded.invalid.append((doc, exc))
            continue
        ident = (policy.kind, policy.key)
        if ident in seen:
            raise InputError(
                f"{doc.where()}: duplicate {policy.kind} {policy.key} (first at {seen[ident].where()})"
            )
        seen[ident] = doc
        loaded.policies.append(LoadedPolicy(policy, doc))
        meta = doc.obj.get("metadata")
        written = isinstance(meta, Mapping) and meta.get("namespace")
        if default_namespace and policy.namespace is not None and not written:
            loaded.notes.append(f"{doc.where()}: no metadata.namespace: assumed namespace {policy.namespace}")
    return loaded


def load_policies(paths: Iterable[str | Path], default_namespace: str | None = None) -> Loaded:
    return collect_policies(documents(paths), default_namespace)
