"""Documents (dicts from YAML) → a `PolicySet`, for a cluster whose CNI is Calico or plain Kubernetes
semantics with AdminNetworkPolicies.

No policy is left out in silence: a policy-like document this engine does not evaluate (a kind ending
in `Policy`, or a `Tier`, it does not know) gets a warning naming the document; other kinds are counted
in one summary warning. A set mixing Cilium and Calico kinds is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from exporter.netpol.calico.model import PolicySet
from exporter.netpol.calico.parse import (
    kubernetes_policy,
    parse_calico_policy,
    parse_network_set,
    parse_staged_kubernetes_policy,
    parse_tier,
)
from exporter.netpol.errors import PolicyInvalid
from exporter.netpol.loading import Document

CALICO_API = "projectcalico.org/v3"
KUBERNETES_API = "networking.k8s.io/v1"
CALICO_POLICY_KINDS = ("NetworkPolicy", "GlobalNetworkPolicy", "StagedNetworkPolicy", "StagedGlobalNetworkPolicy")
CALICO_KINDS = (*CALICO_POLICY_KINDS, "StagedKubernetesNetworkPolicy", "Tier", "NetworkSet", "GlobalNetworkSet")
CILIUM_KINDS = ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
CNIS = ("calico", "kubernetes")


class PolicySetError(ValueError):
    """Documents that do not load; `problems` holds one line per problem, each naming its document."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


Describe = Callable[[str], str]  # field path → "where (document): path", for messages


def _flatten(documents: Iterable[Any], names: Sequence[str] | None) -> list[tuple[Any, Describe]]:
    flat: list[tuple[Any, Describe]] = []
    for i, doc in enumerate(documents):
        where = names[i] if names is not None and i < len(names) else f"document {i + 1}"
        if isinstance(doc, Mapping) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            flat.extend((item, _describer(f"{where}, items[{j}]", item)) for j, item in enumerate(doc["items"]))
        elif doc is not None:
            flat.append((doc, _describer(where, doc)))
    return flat


def _describer(where: str, doc: Any) -> Describe:
    meta = doc.get("metadata") if isinstance(doc, Mapping) else None
    name = ""
    if isinstance(meta, Mapping) and meta.get("name"):
        name = f" {meta['namespace']}/{meta['name']}" if meta.get("namespace") else f" {meta['name']}"
    kind = doc.get("kind") if isinstance(doc, Mapping) else None
    label = f"{where} ({kind}{name})" if kind else where
    return lambda path: f"{label}: {path}" if path else label


def load_policies(
    documents: Iterable[Any],
    cni: str = "calico",
    default_namespace: str | None = None,
    names: Sequence[str] | None = None,
) -> PolicySet:
    """Load Calico, Kubernetes and admin-policy documents (dicts). `cni` is "calico" (Calico kinds
    allowed) or "kubernetes" (Kubernetes NetworkPolicy + ANP/BANP/ClusterNetworkPolicy only). `names`
    label each document in messages (e.g. "policies.yaml:12"); default "document N". Raises
    PolicySetError."""
    return _load(_flatten(documents, names), cni, default_namespace)


def load_documents(docs: Sequence[Document], cni: str = "calico", default_namespace: str | None = None) -> PolicySet:
    """As `load_policies`, from the NetworkPolicy engine's `Document`s (files, folders, kustomizations):
    messages name the file and line of the field at fault."""
    return _load([(d.obj, d.where) for d in docs], cni, default_namespace)


def _load(items: list[tuple[Any, Describe]], cni: str, default_namespace: str | None) -> PolicySet:
    if cni not in CNIS:
        raise ValueError(f"cni must be one of {', '.join(CNIS)}, got {cni!r}")
    result = PolicySet()
    # adminpolicy builds on this package's model: imported here, not at the top (no import cycle)
    from exporter.netpol.adminpolicy import KINDS as ADMIN_KINDS
    from exporter.netpol.adminpolicy import parse_admin_policy

    problems: list[str] = []
    others: dict[str, int] = {}
    for doc, describe in items:
        if not isinstance(doc, Mapping):
            problems.append(f"{describe('')}: expected a mapping, got {type(doc).__name__}")
            continue
        kind, api = doc.get("kind"), doc.get("apiVersion")
        label = describe("")
        try:
            if kind in CILIUM_KINDS:
                raise PolicyInvalid("kind", f"{kind} is a Cilium kind: a policy set is for one CNI (here {cni})")
            if kind == "NetworkPolicy" and api == KUBERNETES_API:
                result.policies.append(kubernetes_policy(doc, default_namespace, label))
            elif kind in ADMIN_KINDS:
                result.policies.append(parse_admin_policy(doc, label))
            elif kind in CALICO_KINDS and api == CALICO_API:
                if cni != "calico":
                    raise PolicyInvalid("kind", f"{kind} ({api}) needs --cni calico")
                _load_calico(result, doc, default_namespace, label)
            elif isinstance(kind, str) and (kind.endswith("Policy") or kind == "Tier"):
                result.warnings.append(f"{label}: kind {kind} ({api}) is not evaluated")
            else:
                others[str(kind)] = others.get(str(kind), 0) + 1
        except PolicyInvalid as exc:
            problems.append(f"{describe(exc.path)}: {exc.message}")
    if problems:
        raise PolicySetError(problems)
    if others:
        counted = ", ".join(f"{n} {k}" for k, n in sorted(others.items()))
        result.warnings.append(f"not policies, ignored: {counted}")
    undefined = sorted({p.tier for p in result.policies if not result.tier(p.tier).defined})
    for tier in undefined:
        result.warnings.append(f"tier {tier!r} has policies but no Tier document: its order is unknown")
    return result


def _load_calico(result: PolicySet, doc: Mapping[str, Any], default_namespace: str | None, label: str) -> None:
    kind = doc.get("kind")
    if kind == "Tier":
        tier = parse_tier(doc)
        result.tiers[tier.name] = tier
    elif kind in ("NetworkSet", "GlobalNetworkSet"):
        result.network_sets.append(parse_network_set(doc, default_namespace))
    elif kind == "StagedKubernetesNetworkPolicy":
        result.staged.append(parse_staged_kubernetes_policy(doc, default_namespace, label))
    else:
        policy = parse_calico_policy(doc, default_namespace, label)
        (result.staged if policy.staged_action else result.policies).append(policy)
