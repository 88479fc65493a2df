"""Bad input gets a clear error, never a crash: arbitrary selectors and arbitrary documents of every
kind this engine reads either load or raise the documented error."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.netpol.calico import Peer, PolicySetError, SelectorError, evaluate, load_policies, parse

SELECTOR_ALPHABET = st.sampled_from(
    [*"ab=!&|(){},'\" \t", "in", "not", "has(", "all()", "global()", "contains", "starts with", "ends with"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(SELECTOR_ALPHABET, max_size=20).map("".join))
def test_any_selector_parses_or_raises_selector_error(text: str) -> None:
    try:
        selector = parse(text)
    except SelectorError as exc:
        assert 1 <= exc.column <= len(text) + 1
        return
    selector.matches({"a": "b"})


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.sampled_from(
    ["", "TCP", "UDP", "ICMP", "Allow", "Deny", "Pass", "Log", "Accept", "Admin", "Baseline", "80", "1:2",
     "10.0.0.0/8", "app == 'x'", "all()", "a ==", "Ingress", "Egress", "default", "Set", "Delete", "http"]))
KEYS = st.sampled_from([
    "action", "protocol", "notProtocol", "source", "destination", "selector", "namespaceSelector", "nets",
    "notNets", "ports", "notPorts", "serviceAccounts", "names", "icmp", "type", "code", "ingress", "egress",
    "types", "order", "tier", "priority", "subject", "namespaces", "pods", "podSelector", "from", "to",
    "networks", "nodes", "portNumber", "port", "portRange", "start", "end", "namedPort", "protocols", "tcp",
    "destinationPort", "number", "range", "stagedAction", "defaultAction", "matchLabels", "policyTypes",
])
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(KEYS, inner, max_size=4)), max_leaves=25)
KINDS = st.sampled_from([
    ("projectcalico.org/v3", "NetworkPolicy"), ("projectcalico.org/v3", "GlobalNetworkPolicy"),
    ("projectcalico.org/v3", "StagedNetworkPolicy"), ("projectcalico.org/v3", "StagedKubernetesNetworkPolicy"),
    ("projectcalico.org/v3", "Tier"), ("projectcalico.org/v3", "GlobalNetworkSet"),
    ("networking.k8s.io/v1", "NetworkPolicy"), ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"),
    ("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy"),
    ("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy"),
])


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    api, kind = draw(KINDS)
    return {"apiVersion": api, "kind": kind, "metadata": draw(st.one_of(
        st.just({"name": "default", "namespace": "shop"}), st.dictionaries(st.sampled_from(["name", "namespace"]),
                                                                           SCALARS))),
            "spec": draw(st.dictionaries(KEYS, VALUES, max_size=5))}


@settings(max_examples=400, deadline=None)
@given(st.lists(documents(), min_size=1, max_size=3))
def test_any_document_loads_or_raises_policy_set_error(docs: list[dict[str, Any]]) -> None:
    try:
        policy_set = load_policies(docs, cni="calico")
    except PolicySetError as exc:
        assert all(p.startswith("document ") for p in exc.problems)
        return
    src = Peer.pod("shop", "a", {"app": "x"}, ip="10.0.0.1")
    evaluate(policy_set, src, Peer.pod("shop", "b", {"app": "y"}), 80, "TCP")
