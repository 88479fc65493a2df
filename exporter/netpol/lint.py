"""Review NetworkPolicies for the mistakes that bite: each finding names policy, rule path and why.

Checks (id — severity):
- `invalid` — error: the API server would reject the object.
- `or-peers` — error: separate `namespaceSelector` and `podSelector` entries in one peer list
  (OR'ed) where one entry with both (AND) reads as the intent.
- `namespace-name-label` — warning: a namespaceSelector on label `name`, which Kubernetes does not
  set (it sets `kubernetes.io/metadata.name`).
- `no-dns` — warning: pods isolated for egress with no rule allowing DNS (UDP/53) to kube-dns.
- `shadowed-rule` — warning: a rule allowing nothing a broader rule does not already allow.
- `open-peers` — warning: a rule with `from: []`/`to: []` (or no list): every peer, in the cluster
  and outside it.
- `ignored-rules` — warning: rules for a direction the policy's `policyTypes` leaves out.
- `not-evaluated` — info (CiliumNetworkPolicy / CiliumClusterwideNetworkPolicy): parts offline
  evaluation cannot decide (`toFQDNs`, `toServices`, groups, nodes, requirements, CIDR groups,
  host policies) or decides only in part (L7 rules: their ports); `check` reports verdicts that
  depend on them `undecided`, attribution never names a policy on their account.

The NetworkPolicy checks above apply to NetworkPolicies; Cilium policies get `not-evaluated`.
Calico policy sets (Calico kinds, AdminNetworkPolicies; `exporter.netpol.calico.findings`) add
`tier-without-pass`, `order-tie` and `shadowed-rule` — warnings. Any policy-like kind no engine
evaluates is `unevaluated-kind` — warning.

A policy can acknowledge findings with the annotation `netpol-exporter.io/lint-ignore: "id,id"`;
those are reported as suppressed and never fail the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from exporter.netpol.cilium import CiliumPolicy
from exporter.netpol.coverage import rule_covers, selector_covers
from exporter.netpol.evaluator import Endpoint, rule_matches_peer, rule_matches_ports, selects
from exporter.netpol.labels import Labels, LabelSelector
from exporter.netpol.loading import Loaded, LoadedPolicy
from exporter.netpol.policy import EGRESS, INGRESS, NetworkPolicy, Rule

IGNORE_ANNOTATION = "netpol-exporter.io/lint-ignore"
SEVERITIES = ("error", "warning", "info")

# The cluster DNS the no-dns check looks for (CoreDNS/kube-dns as kubeadm, kind, EKS, GKE deploy it).
KUBE_DNS = Endpoint(
    key="kube-system/kube-dns",
    namespace="kube-system",
    labels=Labels({"k8s-app": "kube-dns"}),
    namespace_labels=Labels({"kubernetes.io/metadata.name": "kube-system"}),
)


@dataclass(frozen=True)
class Finding:
    severity: str
    check: str
    policy: str  # "ns/name"
    path: str  # field path inside the policy, e.g. spec.ingress[4].from[1]
    message: str
    where: str = ""  # file:line
    suppressed: bool = False

    def sort_key(self) -> tuple[str, str, str, str]:
        return (self.policy, self.path, self.check, self.message)


def _finding(lp: LoadedPolicy[Any], severity: str, check: str, path: str, message: str) -> Finding:
    return Finding(severity, check, lp.policy.key, path, message, lp.document.location(path))


def _check_or_peers(lp: LoadedPolicy[NetworkPolicy]) -> Iterable[Finding]:
    policy = lp.policy
    for rule in (*policy.ingress, *policy.egress):
        peers = rule.peers or ()
        ns_only = [i for i, p in enumerate(peers) if p.namespace_selector is not None and p.pod_selector is None]
        pod_only = [i for i, p in enumerate(peers) if p.pod_selector is not None and p.namespace_selector is None]
        if not ns_only or not pod_only:
            continue
        field = rule.peers_field
        ns_peer, pod_peer = peers[ns_only[0]], peers[pod_only[0]]
        assert ns_peer.namespace_selector is not None and pod_peer.pod_selector is not None
        yield _finding(
            lp,
            "error",
            "or-peers",
            f"{rule.path}.{field}[{pod_only[0]}]",
            f"{field}[{ns_only[0]}] allows EVERY pod in namespaces "
            f"[{ns_peer.namespace_selector.describe()}] and {field}[{pod_only[0]}] separately allows pods "
            f"[{pod_peer.pod_selector.describe()}] of namespace {policy.namespace} (list entries are OR'ed). "
            f"For pods [{pod_peer.pod_selector.describe()}] in those namespaces, write one entry holding both "
            "namespaceSelector and podSelector (no '-' before podSelector).",
        )


def _selector_paths(policy: NetworkPolicy) -> Iterable[tuple[str, LabelSelector]]:
    for rule in (*policy.ingress, *policy.egress):
        for i, peer in enumerate(rule.peers or ()):
            if peer.namespace_selector is not None:
                yield f"{rule.path}.{rule.peers_field}[{i}].namespaceSelector", peer.namespace_selector


def _check_name_label(lp: LoadedPolicy[NetworkPolicy]) -> Iterable[Finding]:
    for path, selector in _selector_paths(lp.policy):
        keys = {r.key for r in selector.requirements}
        if "name" in keys:
            value = selector.exact_value("name")
            fix = f"kubernetes.io/metadata.name: {value}" if value else "kubernetes.io/metadata.name"
            yield _finding(
                lp,
                "warning",
                "namespace-name-label",
                path,
                "selects namespaces by label `name`, which Kubernetes does not set: unless every namespace "
                f"is labelled by hand this matches none and the rule never applies. Use `{fix}` (set by the "
                "API server on every namespace since 1.21).",
            )


def _representative_labels(selector: LabelSelector) -> Labels | None:
    """Labels of some pod the selector selects, or None when none can be built."""
    labels: dict[str, str] = {}
    for r in selector.requirements:
        if r.operator == "In":
            labels[r.key] = min(r.values)
        elif r.operator == "Exists":
            labels.setdefault(r.key, "x")
    result = Labels(labels)
    return result if selector.matches(result) else None


def _allows_dns(policy: NetworkPolicy) -> bool:
    """Whether an egress rule of the policy allows UDP/53 to kube-dns (an ipBlock rule: maybe)."""
    if not policy.affects_egress:
        return False
    for rule in policy.egress:
        if not rule_matches_ports(rule, 53, "UDP", ()):
            continue
        # An ipBlock may hold the DNS service or node-local DNS address: give it the benefit of the doubt.
        if rule_matches_peer(rule, policy.namespace, KUBE_DNS) or any(p.ip_block for p in rule.peers or ()):
            return True
    return False


def _check_no_dns(lp: LoadedPolicy[NetworkPolicy], dns_policies: Sequence[NetworkPolicy]) -> Iterable[Finding]:
    """`dns_policies`: the policies of the namespace that allow DNS."""
    policy = lp.policy
    if not policy.affects_egress:
        return
    labels = _representative_labels(policy.pod_selector)
    if labels is None:
        return
    pod = Endpoint(key="?", namespace=policy.namespace, labels=labels)
    if any(selects(other, pod) for other in dns_policies):
        return
    path = "spec.egress" if policy.egress else "spec.policyTypes"
    yield _finding(
        lp,
        "warning",
        "no-dns",
        path,
        f"pods [{policy.pod_selector.describe()}] are isolated for egress and no policy of namespace "
        f"{policy.namespace} allows them DNS (UDP/53 to kube-dns pods k8s-app=kube-dns in kube-system): "
        "name lookups will time out. Add an egress rule to namespaceSelector "
        "kubernetes.io/metadata.name=kube-system ∧ podSelector k8s-app=kube-dns on UDP and TCP 53.",
    )


def _check_open_peers(lp: LoadedPolicy[NetworkPolicy]) -> Iterable[Finding]:
    for rule in (*lp.policy.ingress, *lp.policy.egress):
        if rule.peers is not None:
            continue
        field = rule.peers_field
        written = f"`{field}: []`" if rule.peers_explicit_empty else f"no `{field}`"
        ports = "every port" if rule.ports is None else ", ".join(p.describe() for p in rule.ports)
        who = "every source" if rule.direction == INGRESS else "every destination"
        yield _finding(
            lp,
            "warning",
            "open-peers",
            f"{rule.path}.{field}" if rule.peers_explicit_empty else rule.path,
            f"{written} allows {who} — all pods of all namespaces and every address outside the cluster — "
            f"on {ports}. An empty list means everyone, not no one. Name the peers (selectors, or an ipBlock "
            "for external addresses), or acknowledge it with the lint-ignore annotation.",
        )


def _check_ignored_rules(lp: LoadedPolicy[NetworkPolicy]) -> Iterable[Finding]:
    policy = lp.policy
    for direction, rules, affected in (
        (INGRESS, policy.ingress, policy.affects_ingress),
        (EGRESS, policy.egress, policy.affects_egress),
    ):
        if rules and not affected:
            yield _finding(
                lp,
                "warning",
                "ignored-rules",
                f"spec.{direction}",
                f"has {direction} rules but policyTypes does not list {direction.capitalize()}: they are ignored.",
            )


def _check_cilium(lp: LoadedPolicy[Any], policy: CiliumPolicy) -> Iterable[Finding]:
    for path, why in policy.notes:
        yield _finding(lp, "info", "not-evaluated", path, why)


def _check_shadowed(policies: Sequence[LoadedPolicy[NetworkPolicy]]) -> Iterable[Finding]:
    """Rules another rule of the same namespace covers, for every pod the shadowed rule's policy selects."""
    order = {id(lp.policy): n for n, lp in enumerate(policies)}
    by_namespace: dict[str, list[LoadedPolicy[NetworkPolicy]]] = {}
    for lp in policies:
        by_namespace.setdefault(lp.policy.namespace, []).append(lp)
    for lp in policies:
        for direction in (INGRESS, EGRESS):
            if not lp.policy.affects(direction):
                continue
            for rule in lp.policy.rules(direction):
                broader = _broader_rule(lp.policy, rule, by_namespace[lp.policy.namespace], order, direction)
                if broader is not None:
                    other, by = broader
                    at = by.path if other is lp.policy else f"{other.key} {by.path}"
                    yield _finding(
                        lp,
                        "warning",
                        "shadowed-rule",
                        rule.path,
                        f"allows nothing that {at} does not already allow to the same pods; "
                        "remove it, or narrow the broader rule if this one states the intent.",
                    )


def _broader_rule(
    policy: NetworkPolicy,
    rule: Rule,
    policies: Sequence[LoadedPolicy[NetworkPolicy]],
    order: dict[int, int],
    direction: str,
) -> tuple[NetworkPolicy, Rule] | None:
    mine = (order[id(policy)], rule.index)
    my_pairs = policy.pod_selector.exact_pairs
    for lp in policies:
        other = lp.policy
        if other.namespace != policy.namespace or not other.affects(direction):
            continue
        # Necessary for coverage (and cheap): every key=value the other selector requires, this one does.
        if not other.pod_selector.exact_pairs <= my_pairs:
            continue
        if not selector_covers(other.pod_selector, policy.pod_selector):
            continue
        for candidate in other.rules(direction):
            if other is policy and candidate.index == rule.index:
                continue
            if not rule_covers(candidate, other.namespace, rule, policy.namespace):
                continue
            mutual = rule_covers(rule, policy.namespace, candidate, other.namespace) and selector_covers(
                policy.pod_selector, other.pod_selector
            )
            # Two equivalent rules: only the later one is reported.
            if not mutual or (order[id(other)], candidate.index) < mine:
                return other, candidate
    return None


def lint(loaded: Loaded) -> list[Finding]:
    findings: list[Finding] = []
    for doc, err in loaded.invalid:
        findings.append(
            Finding(
                "error", "invalid", _doc_policy_name(doc.obj), err.path, err.message, doc.where(err.path).split(" (")[0]
            )
        )
    dns_by_namespace: dict[str, list[NetworkPolicy]] = {}
    kube = [cast("LoadedPolicy[NetworkPolicy]", lp) for lp in loaded.policies if isinstance(lp.policy, NetworkPolicy)]
    for any_lp in loaded.policies:
        if isinstance(any_lp.policy, CiliumPolicy):
            findings.extend(_check_cilium(any_lp, any_lp.policy))
    for kp in kube:
        if _allows_dns(kp.policy):
            dns_by_namespace.setdefault(kp.policy.namespace, []).append(kp.policy)
    for kp in kube:
        findings.extend(_check_or_peers(kp))
        findings.extend(_check_name_label(kp))
        findings.extend(_check_no_dns(kp, dns_by_namespace.get(kp.policy.namespace, [])))
        findings.extend(_check_open_peers(kp))
        findings.extend(_check_ignored_rules(kp))
    findings.extend(_check_shadowed(kube))
    ignored = {lp.policy.key: _ignored_checks(lp.policy) for lp in loaded.policies}
    findings = [replace(f, suppressed=True) if f.check in ignored.get(f.policy, ()) else f for f in findings]
    return sorted(findings, key=Finding.sort_key)


def _ignored_checks(policy: NetworkPolicy | CiliumPolicy) -> frozenset[str]:
    value = dict(policy.annotations).get(IGNORE_ANNOTATION, "")
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _doc_policy_name(obj: object) -> str:
    if not isinstance(obj, dict):
        return "?"
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        if obj.get("kind") == "CiliumClusterwideNetworkPolicy":
            return str(meta.get("name") or "?")
        return f"{meta.get('namespace') or '?'}/{meta.get('name') or '?'}"
    return "?"


def _calico_finding(finding: Any) -> Finding:
    where = finding.source.split(" (")[0]
    return Finding("warning", finding.check, finding.policy, "", finding.message, where)


def lint_input(read: Any) -> tuple[Loaded, list[Finding]]:
    """Lint a `PolicyInput` (exporter.netpol.policyinput): the NetworkPolicy checks on its Kubernetes
    NetworkPolicies, Cilium's `not-evaluated`, the Calico findings of a tiered set, and
    `unevaluated-kind` for every policy-like document no engine reads."""
    from exporter.netpol.loading import collect_policies

    if read.tiered:
        from exporter.netpol.calico.findings import calico_findings

        kube_docs = [d for d in read.found.evaluated
                     if d.obj.get("kind") == "NetworkPolicy" and d.obj.get("apiVersion") == "networking.k8s.io/v1"]
        loaded = collect_policies(kube_docs, read.default_namespace)
        acknowledged = {d.where(): _annotated_checks(d.obj) for d in read.found.evaluated}
        findings = lint(loaded) + [
            replace(_calico_finding(f), suppressed=f.check in acknowledged.get(f.source, ()))
            for f in calico_findings(read.policy_set)]
    else:
        loaded = read.loaded
        findings = lint(loaded)
    for item in read.found.unevaluated:
        findings.append(Finding("warning", "unevaluated-kind", _object_name(item.document.obj), "",
                                f"kind {item.kind} ({item.api or 'no apiVersion'}) is not evaluated: no verdict, "
                                "attribution or finding takes it into account", item.document.location()))
    return loaded, sorted(findings, key=Finding.sort_key)


def _object_name(obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or not meta.get("name"):
        return "?"
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])


def _annotated_checks(obj: Any) -> frozenset[str]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    value = annotations.get(IGNORE_ANNOTATION, "") if isinstance(annotations, dict) else ""
    return frozenset(part.strip() for part in str(value).split(",") if part.strip())
