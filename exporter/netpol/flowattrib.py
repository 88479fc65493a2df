"""Attribution from policy files (`--policies`): name the policies behind Hubble verdicts offline.

The contract's naming rules, with the policies in force read from files instead of the API:

- a drop or audit with reason `POLICY_DENIED` (default deny) and no policy named → the isolating
  policies at the enforcing pod (the most specific selectors; ties: all of them);
- an unnamed `POLICY_DENY` drop or audit → the policies whose deny rules match it;
- an unnamed allowed verdict with `policy_match_type` ≥ 1 (Cilium < 1.15 fills no `*_allowed_by`)
  → the policies whose rules allow it; `policy_match_type` 0 stays `default-allow`.

The evaluation reads what the flow carries: a pod's labels, its namespace's labels
(`k8s:io.cilium.k8s.namespace.labels.*`), its address, and Cilium's reserved identities for the
other side. Nothing is guessed: when the engine finds no policy (or cannot decide), the record
keeps the contract's sentinel. Installed on the FlowCounter's `enrich` hook (chained after any
enricher already there); called from the counting thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from exporter.counting import DEFAULT_DENY_REASON, UNKNOWN_POLICY
from exporter.model import CALICO_FLOW, Family, FlowRecord, Peer
from exporter.netpol.attribution import NAMESPACE_NAME_LABEL, most_specific
from exporter.netpol.cilium import CLUSTER_ENTITIES, NAMESPACE_KEY, NAMESPACE_LABELS_PREFIX, parse_ip
from exporter.netpol.evaluator import Endpoint, evaluate_direction, group_by_namespace, policies_at
from exporter.netpol.labels import Labels
from exporter.netpol.loading import AnyPolicy
from exporter.netpol.policy import EGRESS, INGRESS

log = logging.getLogger("netpol_exporter.netpol")

DENY_RULE_REASON: Final = "POLICY_DENY"
_CACHE_LIMIT: Final = 65536
_NAMED_FAMILIES: Final = (Family.DROPPED, Family.AUDIT)


def endpoint_of(peer: Peer) -> Endpoint | None:
    """The engine's view of one side of a Hubble flow; None when it cannot be told (`unknown`, or a
    pod whose labels the flow does not carry)."""
    ip = parse_ip(peer.ip)
    if not peer.namespace:
        if peer.name in CLUSTER_ENTITIES:
            return Endpoint(key=peer.name, namespace=None, ip=ip, entity=peer.name)
        if peer.name == "world":
            return Endpoint(key=peer.ip or "world", namespace=None, ip=ip, entity="world")
        return None
    if not any(label.startswith("k8s:") for label in peer.labels):
        return None  # labels masked or absent: which policies select the pod cannot be told
    pod: dict[str, str] = {}
    namespace_labels: dict[str, str] = {NAMESPACE_NAME_LABEL: peer.namespace}
    for label in peer.labels:
        if not label.startswith("k8s:"):
            continue
        key, _, value = label[4:].partition("=")
        if key.startswith(NAMESPACE_LABELS_PREFIX):
            namespace_labels[key[len(NAMESPACE_LABELS_PREFIX):]] = value
        elif key != NAMESPACE_KEY:
            pod[key] = value
    return Endpoint(key=f"{peer.namespace}/{peer.pod or peer.name}", namespace=peer.namespace, labels=Labels(pod),
                    namespace_labels=Labels(namespace_labels), ip=ip)


class PolicyFileAttributor:
    """The FlowCounter `enrich` callable naming policies from a fixed set of policies."""

    fork_safe = True  # plain data, no threads: `once --jobs` workers may use it as they inherit it

    def __init__(self, policies: Sequence[AnyPolicy]) -> None:
        self.policies = list(policies)
        self._by_namespace = group_by_namespace(self.policies)
        self._cache: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self.attributed = 0  # records given policy names

    def __call__(self, record: FlowRecord) -> FlowRecord:
        if record.kind == CALICO_FLOW:
            return record
        verdict = record.verdict
        if verdict in _NAMED_FAMILIES:
            if record.policies or record.reason not in (DEFAULT_DENY_REASON, DENY_RULE_REASON):
                return record
        elif verdict is Family.ALLOWED:
            if record.match_type < 1 or record.policies not in ((), (UNKNOWN_POLICY,)):
                return record
        else:
            return record
        key = (verdict, record.reason, record.direction, record.source, record.destination, record.protocol,
               record.port_or_type)
        named = self._cache.get(key)
        if named is None:
            named = self._name(record)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = named
        if named:
            record.policies = named
            self.attributed += 1
        return record

    def _name(self, record: FlowRecord) -> tuple[str, ...]:
        src, dst = endpoint_of(record.source), endpoint_of(record.destination)
        if record.direction in (INGRESS, EGRESS):
            return self._name_at(record, record.direction, src, dst)
        # Direction unknown (field-masked exports): name only when exactly one side gives names.
        at_dst, at_src = self._name_at(record, INGRESS, src, dst), self._name_at(record, EGRESS, src, dst)
        return at_dst or at_src if bool(at_dst) != bool(at_src) else ()

    def _name_at(self, record: FlowRecord, direction: str, src: Endpoint | None,
                 dst: Endpoint | None) -> tuple[str, ...]:
        pod, other = (dst, src) if direction == INGRESS else (src, dst)
        if pod is None or pod.namespace is None:
            return ()
        default_deny = record.reason == DEFAULT_DENY_REASON and record.verdict is not Family.ALLOWED
        if other is None:
            if not default_deny:
                return ()
            other = Endpoint(key="?", namespace=None)  # isolation does not depend on the far side
        protocol = record.protocol.upper() if not record.protocol.startswith("ICMP") else record.protocol
        port = record.port_or_type if record.protocol else None
        candidates = policies_at(self._by_namespace, pod.namespace)
        side = evaluate_direction(candidates, pod, other, direction, port, protocol)
        if record.verdict is Family.ALLOWED:
            return side.allowing
        if default_deny:
            isolating = set(side.isolating)
            return most_specific([p for p in candidates if p.key in isolating])
        return side.denying


def attach_policy_files(pipeline: Any, paths: Sequence[str], cni: str | None = None,
                        namespace: str | None = None) -> PolicyFileAttributor:
    """Load the policies (InputError names file, line and field) and chain the attributor onto
    the pipeline's counter; invalid policies are an InputError too (nothing guessed from half a set).
    A Calico / AdminNetworkPolicy set attributes nothing: Calico's records name their policies."""
    from exporter.netpol.errors import InputError
    from exporter.netpol.policyinput import read_policy_files

    read = read_policy_files(paths, cni, namespace)
    for warning in read.warnings:  # policy-like kinds not evaluated, other kinds counted
        log.warning("policy files: %s", warning)
    if read.tiered:
        log.info("policy files: %d Calico/AdminNetworkPolicy policies: Calico flow records name their policies "
                 "already; Hubble records are not attributed from them", read.count)
        policies: list[AnyPolicy] = []
    else:
        loaded = read.loaded
        if loaded.invalid:
            raise InputError("invalid policy: " + "; ".join(loaded.invalid_messages()))
        for note in loaded.notes:
            log.info("policy files: %s", note)
        policies = [lp.policy for lp in loaded.policies]
    attributor = PolicyFileAttributor(policies)
    counter = pipeline.counter
    previous = counter.enrich
    if not policies:
        pass  # it could name nothing: no hook on the per-flow path
    elif previous is None:
        counter.enrich = attributor
    else:
        def chained(record: FlowRecord) -> FlowRecord:
            return attributor(previous(record))

        counter.enrich = chained
    log.info("policy files: %d policies loaded for attribution", len(attributor.policies))
    return attributor


def attach_from_config(pipeline: Any, config: Any) -> PolicyFileAttributor | None:
    """`once`/`run`/`demo`: attach the configured policy files; a bad file exits 2 with its message."""
    if not config.policies:
        return None
    import sys

    from exporter.netpol.errors import InputError

    try:
        return attach_policy_files(pipeline, config.policies, getattr(config, "policies_cni", None),
                                   getattr(config, "policies_namespace", None))
    except InputError as exc:
        print(f"netpol-exporter: --policies: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
