"""CNP/CCNP parsing errors and what offline evaluation leaves undecided."""

from __future__ import annotations

from typing import Any

import pytest

from exporter.netpol.cilium_parse import parse_cilium_policy
from exporter.netpol.errors import PolicyInvalid
from exporter.netpol.evaluator import UNDECIDED
from tests.netpol.helpers import make_cluster, verdict


def cnp(name: str, spec: dict[str, Any], namespace: str = "app") -> dict[str, Any]:
    return {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def cluster_with(*objs: dict[str, Any]) -> Any:
    cluster = make_cluster()
    cluster.policies = [parse_cilium_policy(o) for o in objs]
    return cluster


FQDN_EGRESS = cnp("to-github", {"endpointSelector": {"matchLabels": {"role": "web"}},
                                "egress": [{"toFQDNs": [{"matchName": "github.com"}],
                                            "toPorts": [{"ports": [{"port": "443"}]}]}]})


def test_fqdn_rule_is_undecided_where_it_could_allow_and_decided_elsewhere() -> None:
    cluster = cluster_with(FQDN_EGRESS)
    v = verdict(cluster, "app/web", "8.8.8.8", 443)
    assert v.outcome == UNDECIDED and v.egress is not None and v.egress.undecided == ("app/to-github",)
    assert verdict(cluster, "app/web", "8.8.8.8", 80).outcome == "deny"  # port outside the rule: decided
    assert verdict(cluster, "app/db", "8.8.8.8", 443).outcome == "allow"  # not selected


def test_a_matching_deny_decides_even_beside_an_undecidable_allow() -> None:
    deny = cnp("deny-world", {"endpointSelector": {"matchLabels": {"role": "web"}},
                              "egressDeny": [{"toEntities": ["world"]}]})
    v = verdict(cluster_with(FQDN_EGRESS, deny), "app/web", "8.8.8.8", 443)
    assert v.outcome == "deny" and v.egress is not None and v.egress.denying == ("app/deny-world",)


def test_a_decided_allow_wins_over_an_undecidable_one() -> None:
    allow = cnp("allow-world", {"endpointSelector": {"matchLabels": {"role": "web"}},
                                "egress": [{"toEntities": ["world"]}]})
    assert verdict(cluster_with(FQDN_EGRESS, allow), "app/web", "8.8.8.8", 443).outcome == "allow"


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ({"ingress": []}, "spec", "exactly one of endpointSelector and nodeSelector"),
        ({"nodeSelector": {}, "ingress": [{}]}, "spec.nodeSelector", "only allowed in a CiliumClusterwide"),
        ({"endpointSelector": {}, "ingress": [{"fromEntities": ["planet"]}]}, "spec.ingress[0].fromEntities[0]",
         "unknown entity"),
        ({"endpointSelector": {}, "ingress": [{"toPorts": [{"ports": [{"port": "70000"}]}]}]},
         "spec.ingress[0].toPorts[0].ports[0].port", "between 1 and 65535"),
        ({"endpointSelector": {}, "egress": [{"toCIDRSet": [{"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}]}]},
         "spec.egress[0].toCIDRSet[0].except[0]", "not inside"),
        ({"endpointSelector": {}, "egress": [{"fromEndpoints": [{}]}]}, "spec.egress[0]", "unknown field"),
        ({"endpointSelector": {}, "ingress": [{"icmps": [{"fields": [{"type": "Bogus"}]}]}]},
         "spec.ingress[0].icmps[0].fields[0].type", "unknown IPv4 ICMP type"),
        ({"endpointSelector": {}, "enableDefaultDeny": {"ingress": "no"}, "ingress": [{}]},
         "spec.enableDefaultDeny.ingress", "true or false"),
    ],
)
def test_invalid_objects_name_the_field(spec: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(PolicyInvalid) as err:
        parse_cilium_policy(cnp("bad", spec))
    assert err.value.path == path and message in err.value.message


def test_endpoint_selectors_share_the_label_selector_parser_with_cilium_keys_and_values() -> None:
    from exporter.netpol.cilium_parse import parse_endpoint_selector
    from exporter.netpol.labels import Requirement

    selector = parse_endpoint_selector({"matchLabels": {"k8s:app": "web", "any:tier": None},
                                        "matchExpressions": [{"key": "k8s:role", "operator": "In",
                                                              "values": ["a b", "x"]}]}, "spec.endpointSelector")
    assert selector.requirements == (Requirement("app", "In", frozenset({"web"})),
                                     Requirement("tier", "In", frozenset({""})),  # null: Go's ""
                                     Requirement("role", "In", frozenset({"a b", "x"})))  # any string
    with pytest.raises(PolicyInvalid) as err:
        parse_endpoint_selector({"matchExpressions": [{"key": "app", "operator": "In", "values": ["a", 3]}]}, "s")
    assert err.value.path == "s.matchExpressions[0].values[1]" and "must be a string" in err.value.message
    with pytest.raises(PolicyInvalid, match="in an endpoint selector"):
        parse_endpoint_selector({"podSelector": {}}, "s")


def test_ccnp_is_named_without_namespace_and_cnp_needs_one() -> None:
    ccnp = parse_cilium_policy({"apiVersion": "cilium.io/v2", "kind": "CiliumClusterwideNetworkPolicy",
                                "metadata": {"name": "lockdown"}, "spec": {"endpointSelector": {}, "egress": [{}]}})
    assert ccnp.key == "lockdown" and ccnp.namespace is None
    obj = cnp("x", {"endpointSelector": {}})
    del obj["metadata"]["namespace"]
    with pytest.raises(PolicyInvalid, match=r"metadata\.namespace"):
        parse_cilium_policy(obj)


def test_notes_list_what_is_not_evaluated() -> None:
    policy = parse_cilium_policy(cnp("mixed", {
        "endpointSelector": {},
        "egress": [{"toServices": [{"k8sService": {"serviceName": "x", "namespace": "y"}}]},
                   {"toCIDRSet": [{"cidrGroupRef": "corp"}]}],
    }))
    paths = [p for p, _ in policy.notes]
    assert paths == ["spec.egress[0].toServices", "spec.egress[1].toCIDRSet[0].cidrGroup"]


def test_reserved_identity_selectors_and_requires() -> None:
    host_only = cnp("from-host", {"endpointSelector": {"matchLabels": {"role": "web"}},
                                  "ingress": [{"fromEndpoints": [{"matchLabels": {"reserved:host": ""}}]}]})
    cluster = cluster_with(host_only)
    assert verdict(cluster, "host", "app/web", 80).outcome == "allow"  # not rescoped to the namespace
    assert verdict(cluster, "remote-node", "app/web", 80).outcome == "deny"
    assert verdict(cluster, "app/db", "app/web", 80).outcome == "deny"
    requires = cnp("requires", {"endpointSelector": {"matchLabels": {"role": "web"}},
                                "ingress": [{"fromEndpoints": [{}], "fromRequires": [{"matchLabels": {"env": "x"}}]}]})
    assert verdict(cluster_with(requires), "app/db", "app/web", 80).outcome == UNDECIDED


def test_mangled_cilium_policies_are_reported_never_crash() -> None:
    """Every node of the case set's Cilium policies replaced by odd values: PolicyInvalid or a policy, nothing else."""
    import contextlib
    import copy
    import random
    from pathlib import Path

    import yaml

    from exporter.netpol.cilium import CILIUM_KINDS

    originals = [p for path in sorted((Path(__file__).parent / "cilium").glob("*.model.yaml"))
                 for p in yaml.safe_load(path.read_text())["policies"] if p["kind"] in CILIUM_KINDS]
    odd: list[Any] = [None, 1, -1, True, "x", "", "99999", "k8s:", [], {}, [None], [{}], {"a": None}, 3.5]
    rng = random.Random(12)

    def nodes(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        out = [path]
        if isinstance(obj, dict):
            for k, v in obj.items():
                out += nodes(v, (*path, k))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                out += nodes(v, (*path, i))
        return out

    tried = 0
    for original in originals:
        for path in nodes(original)[1:]:
            for value in rng.sample(odd, 4):
                mangled = copy.deepcopy(original)
                target = mangled
                for step in path[:-1]:
                    target = target[step]
                target[path[-1]] = value
                tried += 1
                with contextlib.suppress(PolicyInvalid):
                    parse_cilium_policy(mangled)
    assert tried > 500
