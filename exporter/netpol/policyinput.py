"""Which engine evaluates a set of policy documents, and what it leaves out.

A cluster runs one CNI. Cilium kinds (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy) are
evaluated by the NetworkPolicy engine (`exporter.netpol.evaluator`); Calico kinds
(`projectcalico.org/v3`) and the AdminNetworkPolicy family by the tiered engine
(`exporter.netpol.calico`). A set mixing Cilium and Calico kinds is an error. `--cni cilium|calico`
says which CNI when only Kubernetes NetworkPolicies are given; the default is plain Kubernetes
semantics (the NetworkPolicy engine; the tiered engine when AdminNetworkPolicies are given).

No policy is left out in silence: a policy-like document no engine evaluates (a kind ending in
`Policy`, or a `Tier`) is an `Unevaluated` entry naming its file and document; other kinds
(Deployments, Services ...) are counted for one summary line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from exporter.netpol.errors import InputError
from exporter.netpol.loading import Document

KUBERNETES_API = "networking.k8s.io/v1"
CALICO_API = "projectcalico.org/v3"
CILIUM_KINDS = ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
CALICO_KINDS = ("NetworkPolicy", "GlobalNetworkPolicy", "StagedNetworkPolicy", "StagedGlobalNetworkPolicy",
                "StagedKubernetesNetworkPolicy", "Tier", "NetworkSet", "GlobalNetworkSet")
ADMIN_KINDS = ("AdminNetworkPolicy", "BaselineAdminNetworkPolicy", "ClusterNetworkPolicy")  # adminpolicy.KINDS
TIERED, NETPOL = "tiered", "netpol"  # the two engines


@dataclass(frozen=True)
class Unevaluated:
    """A policy-like document no engine evaluates."""

    document: Document
    kind: str
    api: str

    @property
    def message(self) -> str:
        return f"{self.document.where()}: kind {self.kind} ({self.api or 'no apiVersion'}) is not evaluated"


@dataclass
class Survey:
    """The documents sorted by what reads them."""

    evaluated: list[Document] = field(default_factory=list)
    unevaluated: list[Unevaluated] = field(default_factory=list)
    others: Counter[str] = field(default_factory=Counter)  # kind → count, not policies
    cilium: list[Document] = field(default_factory=list)
    calico: list[Document] = field(default_factory=list)  # projectcalico.org/v3 kinds
    admin: list[Document] = field(default_factory=list)  # ANP, BANP, ClusterNetworkPolicy

    def warnings(self) -> list[str]:
        """One line per unevaluated policy-like document, one summary line for the other kinds."""
        lines = [u.message for u in self.unevaluated]
        if self.others:
            counted = ", ".join(f"{n} {k}" for k, n in sorted(self.others.items()))
            lines.append(f"not policies, ignored: {counted}")
        return lines


def _kind_api(doc: Document) -> tuple[str | None, str]:
    obj = doc.obj
    if not isinstance(obj, Mapping):
        raise InputError(f"{doc.where()}: expected a Kubernetes object, got {type(obj).__name__}")
    kind, api = obj.get("kind"), obj.get("apiVersion")
    return (kind if isinstance(kind, str) else None), (api if isinstance(api, str) else "")


def survey(docs: Sequence[Document]) -> Survey:
    found = Survey()
    for doc in docs:
        kind, api = _kind_api(doc)
        if kind in CILIUM_KINDS:
            found.cilium.append(doc)
        elif kind in ADMIN_KINDS:
            found.admin.append(doc)
        elif kind in CALICO_KINDS and api == CALICO_API:
            found.calico.append(doc)
        elif kind == "NetworkPolicy":
            pass  # Kubernetes': read by both engines (the NetworkPolicy engine rejects a wrong apiVersion)
        elif kind is not None and (kind.endswith("Policy") or kind == "Tier"):
            found.unevaluated.append(Unevaluated(doc, kind, api))
            continue
        else:
            found.others[kind or "(no kind)"] += 1
            continue
        found.evaluated.append(doc)
    return found


def choose_engine(found: Survey, cni: str | None) -> tuple[str, str]:
    """(engine, the tiered engine's cni) for these documents and `--cni`; InputError when they
    cannot be evaluated together."""
    calico_like = found.calico + found.admin
    if found.cilium and calico_like:
        first_cilium, first_calico = found.cilium[0], calico_like[0]
        raise InputError(
            f"a policy set is for one CNI: Cilium kinds ({first_cilium.where()}) and Calico/"
            f"AdminNetworkPolicy kinds ({first_calico.where()}) cannot be evaluated together")
    if cni == "cilium" and calico_like:
        raise InputError(f"--cni cilium: {calico_like[0].where()} is a Calico/AdminNetworkPolicy kind, "
                         "which Cilium does not enforce")
    if cni == "calico" and found.cilium:
        raise InputError(f"--cni calico: {found.cilium[0].where()} is a Cilium kind, which Calico does not enforce")
    if cni == "calico" or found.calico:
        return TIERED, "calico"
    if found.admin:
        return TIERED, "kubernetes"
    return NETPOL, ""


NAMESPACED_KINDS = ("NetworkPolicy", "StagedNetworkPolicy", "StagedKubernetesNetworkPolicy", "NetworkSet")


def _namespaced(doc: Document) -> bool:
    """A namespaced kind written without metadata.namespace."""
    meta = doc.obj.get("metadata")
    return doc.obj.get("kind") in NAMESPACED_KINDS and not (isinstance(meta, Mapping) and meta.get("namespace"))


@dataclass
class PolicyInput:
    """Policy documents read for one engine: `loaded` (NetworkPolicy engine) or `policy_set` (tiered)."""

    engine: str
    cni: str
    found: Survey
    loaded: Any = None  # exporter.netpol.loading.Loaded
    policy_set: Any = None  # exporter.netpol.calico.PolicySet
    warnings: list[str] = field(default_factory=list)
    default_namespace: str | None = None
    assumed: list[str] = field(default_factory=list)  # notes: namespaced policies given --namespace (tiered)

    @property
    def tiered(self) -> bool:
        return self.engine == TIERED

    @property
    def notes(self) -> list[str]:
        return list(self.loaded.notes) if self.loaded is not None else list(self.assumed)

    def invalid_messages(self) -> list[str]:
        return self.loaded.invalid_messages() if self.loaded is not None else []

    @property
    def count(self) -> int:
        if self.policy_set is not None:
            return len(self.policy_set.policies) + len(self.policy_set.staged)
        return len(self.loaded.policies) + len(self.loaded.invalid)


def read_policy_input(docs: Sequence[Document], cni: str | None, default_namespace: str | None = None,
                      engine_for: Sequence[Document] | None = None) -> PolicyInput:
    """Sort `docs`, choose the engine and load them for it. InputError for a mixed set or, with the
    tiered engine, for any invalid document (file, line and field in the message); the NetworkPolicy
    engine's invalid documents are in `loaded.invalid`, as before. `engine_for`: choose the engine
    for these documents instead (`docs` among them), so that two sets compared are read alike."""
    from exporter.netpol.loading import collect_policies

    found = survey(docs)
    engine, tiered_cni = choose_engine(found if engine_for is None else survey(engine_for), cni)
    result = PolicyInput(engine, tiered_cni or (cni or "kubernetes"), found, warnings=found.warnings(),
                         default_namespace=default_namespace)
    if engine == TIERED:
        from exporter.netpol.calico.loader import PolicySetError, load_documents

        try:
            result.policy_set = load_documents(found.evaluated, tiered_cni, default_namespace)
        except PolicySetError as exc:
            raise InputError("\n".join(exc.problems)) from None
        result.warnings.extend(result.policy_set.warnings)
        result.assumed = [f"{d.where()}: no metadata.namespace: assumed namespace {default_namespace}"
                          for d in found.evaluated if default_namespace and _namespaced(d)]
    else:
        result.loaded = collect_policies(found.evaluated, default_namespace)
    return result


def read_policy_files(paths: Sequence[str], cni: str | None, default_namespace: str | None = None) -> PolicyInput:
    from exporter.netpol.loading import documents

    return read_policy_input(documents(paths), cni, default_namespace)
