"""Every semantic corner of networking.k8s.io/v1 NetworkPolicy the evaluator implements."""

from __future__ import annotations

from dataclasses import replace

import pytest

from exporter.netpol.errors import PolicyInvalid
from exporter.netpol.labels import Labels
from exporter.netpol.policy import parse_policy

from .helpers import allowed, make_cluster, policy, verdict

DENY_INGRESS = policy("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})
DENY_ALL = policy("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
WEB = {"matchLabels": {"role": "web"}}


# -- isolation and policyTypes ---------------------------------------------------------------------


def test_no_policy_allows_everything() -> None:
    c = make_cluster()
    assert allowed(c, "other/client", "app/web")
    v = verdict(c, "other/client", "app/web", 8080)
    assert v.ingress is not None and not v.ingress.isolated and v.egress is not None and not v.egress.isolated


def test_isolation_is_per_direction() -> None:
    c = make_cluster(DENY_INGRESS)
    assert not allowed(c, "other/client", "app/web")
    assert allowed(c, "app/web", "other/web")  # egress of app pods is not isolated
    v = verdict(c, "app/web", "other/web", 8080)
    assert v.egress is not None and not v.egress.isolated


def test_policy_types_default_to_ingress_only_without_egress_rules() -> None:
    c = make_cluster(policy("p", {"podSelector": {}}))
    assert not allowed(c, "other/client", "app/web")
    assert allowed(c, "app/web", "other/web")


def test_policy_types_default_includes_egress_when_egress_rules_exist() -> None:
    c = make_cluster(policy("p", {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}))
    assert not allowed(c, "other/client", "app/web")  # ingress isolated too (no ingress rules)
    assert not allowed(c, "app/web", "other/web", 8080)
    assert allowed(c, "app/web", "other/web", 53, "UDP")


def test_empty_egress_list_without_policy_types_does_not_isolate_egress() -> None:
    c = make_cluster(policy("p", {"podSelector": {}, "egress": []}))
    assert allowed(c, "app/web", "other/web")
    assert not allowed(c, "other/client", "app/web")


def test_rules_of_a_direction_missing_from_policy_types_are_ignored() -> None:
    c = make_cluster(policy("p", {"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{"from": []}]}))
    assert not allowed(c, "app/web", "other/web")
    assert allowed(c, "other/client", "app/web")  # ingress not isolated (and the rule is not used)
    v = verdict(c, "other/client", "app/web", 8080)
    assert v.ingress is not None and not v.ingress.isolated


def test_policies_are_a_union() -> None:
    a = policy(
        "from-client", {"podSelector": WEB, "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "db"}}}]}]}
    )
    b = policy(
        "from-other",
        {"podSelector": WEB, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}]}]},
    )
    c = make_cluster(a, b, DENY_INGRESS)
    assert allowed(c, "app/db", "app/web")
    assert allowed(c, "other/client", "app/web")
    v = verdict(c, "other/client", "app/web", 8080)
    assert v.ingress is not None
    assert v.ingress.isolating == ("app/deny-ingress", "app/from-client", "app/from-other")
    assert v.ingress.allowing == ("app/from-other",)
    assert not allowed(c, "app/bare", "app/web")


def test_a_policy_only_selects_pods_of_its_namespace() -> None:
    c = make_cluster(policy("web", {"podSelector": WEB}))
    assert not allowed(c, "other/client", "app/web")
    assert allowed(c, "app/db", "other/web")


# -- peers ---------------------------------------------------------------------------------------


def test_rule_needs_peer_and_port() -> None:
    c = make_cluster(
        policy(
            "p",
            {
                "podSelector": WEB,
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "db"}}}], "ports": [{"port": 8080}]}],
            },
        )
    )
    assert allowed(c, "app/db", "app/web", 8080)
    assert not allowed(c, "app/db", "app/web", 8081)
    assert not allowed(c, "app/bare", "app/web", 8080)


def test_peers_are_ored() -> None:
    c = make_cluster(
        policy(
            "p",
            {
                "podSelector": WEB,
                "ingress": [
                    {
                        "from": [
                            {"podSelector": {"matchLabels": {"role": "db"}}},
                            {"namespaceSelector": {"matchLabels": {"team": "b"}}},
                        ]
                    }
                ],
            },
        )
    )
    assert allowed(c, "app/db", "app/web")
    assert allowed(c, "other/client", "app/web")  # every pod of a team=b namespace
    assert not allowed(c, "app/bare", "app/web")


def test_pod_and_namespace_selector_in_one_peer_are_anded() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"team": "b"}}, "podSelector": {"matchLabels": {"role": "client"}}}
    c = make_cluster(policy("p", {"podSelector": WEB, "ingress": [{"from": [peer]}]}))
    assert allowed(c, "other/client", "app/web")
    assert not allowed(c, "other/web", "app/web")  # namespace matches, pod does not
    c2 = make_cluster(
        policy("p", {"podSelector": WEB, "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]}]})
    )
    assert not allowed(c2, "other/client", "app/web")  # a podSelector alone means the policy's namespace


def test_empty_namespace_selector_selects_every_namespace_but_no_external_address() -> None:
    c = make_cluster(policy("p", {"podSelector": WEB, "ingress": [{"from": [{"namespaceSelector": {}}]}]}))
    assert allowed(c, "other/client", "app/web")
    assert allowed(c, "app/db", "app/web")
    assert not allowed(c, "203.0.113.9", "app/web")


def test_match_expressions() -> None:
    def sel(*exprs: dict[str, object]) -> dict[str, object]:
        return policy("p", {"podSelector": {"matchExpressions": list(exprs)}, "policyTypes": ["Ingress"]})

    c = make_cluster(sel({"key": "role", "operator": "In", "values": ["web", "db"]}))
    assert not allowed(c, "app/bare", "app/web") and not allowed(c, "app/bare", "app/db", 5432)
    assert allowed(c, "app/web", "app/bare")
    c = make_cluster(sel({"key": "role", "operator": "NotIn", "values": ["web"]}))
    assert allowed(c, "app/db", "app/web") and not allowed(c, "app/web", "app/db", 5432)
    assert not allowed(c, "app/web", "app/bare")  # NotIn matches pods without the key
    c = make_cluster(sel({"key": "role", "operator": "Exists"}))
    assert allowed(c, "app/web", "app/bare") and not allowed(c, "app/bare", "app/db", 5432)
    c = make_cluster(sel({"key": "role", "operator": "DoesNotExist"}))
    assert not allowed(c, "app/web", "app/bare") and allowed(c, "app/bare", "app/db", 5432)
    both = policy(
        "p",
        {
            "podSelector": {
                "matchLabels": {"role": "web"},
                "matchExpressions": [{"key": "tier", "operator": "Exists"}],
            },
            "policyTypes": ["Ingress"],
        },
    )
    c = make_cluster(both)
    assert not allowed(c, "app/db", "app/web")  # role=web and tier set
    c.pods["app/web"] = replace(c.pods["app/web"], labels=Labels({"role": "web"}))  # no tier label
    assert allowed(c, "app/bare", "app/web")


# -- ipBlock -------------------------------------------------------------------------------------


def test_ip_block_with_except_matches_pods_and_external_addresses() -> None:
    block = {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}
    c = make_cluster(policy("p", {"podSelector": WEB, "ingress": [{"from": [block]}]}))
    assert allowed(c, "10.200.0.7", "app/web")
    assert allowed(c, "app/db", "app/web")  # a pod's IP inside the block
    assert not allowed(c, "other/client", "app/web")  # 10.1.0.2 is excepted
    assert not allowed(c, "192.0.2.1", "app/web")
    assert not allowed(c, "app/bare", "app/web")  # no known IP: an ipBlock cannot match


def test_cidr_with_host_bits_is_read_as_its_network() -> None:
    c = make_cluster(policy("p", {"podSelector": WEB, "ingress": [{"from": [{"ipBlock": {"cidr": "10.1.2.3/16"}}]}]}))
    assert allowed(c, "10.1.200.1", "app/web")
    assert allowed(c, "other/client", "app/web")
    assert not allowed(c, "10.2.0.1", "app/web")


def test_ipv6_block_never_matches_ipv4() -> None:
    c = make_cluster(policy("p", {"podSelector": WEB, "ingress": [{"from": [{"ipBlock": {"cidr": "::/0"}}]}]}))
    assert not allowed(c, "10.9.9.9", "app/web")
    assert allowed(c, "2001:db8::1", "app/web")


def test_selectors_never_match_addresses_outside_the_cluster() -> None:
    c = make_cluster(
        policy("p", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {}}]}]})
    )
    assert allowed(c, "app/web", "other/web")
    assert not allowed(c, "app/web", "198.51.100.1")


# -- ports ---------------------------------------------------------------------------------------


def port_policy(*ports: dict[str, object], direction: str = "ingress") -> dict[str, object]:
    return policy(
        "p", {"podSelector": {}, "policyTypes": [direction.capitalize()], direction: [{"ports": list(ports)}]}
    )


def test_protocol_defaults_to_tcp_and_udp_only_never_allows_tcp() -> None:
    c = make_cluster(port_policy({"port": 53}))
    assert allowed(c, "other/client", "app/web", 53, "TCP")
    assert not allowed(c, "other/client", "app/web", 53, "UDP")
    c = make_cluster(port_policy({"port": 53, "protocol": "UDP"}))
    assert allowed(c, "other/client", "app/web", 53, "UDP")
    assert not allowed(c, "other/client", "app/web", 53, "TCP")
    c = make_cluster(port_policy({"port": 9000, "protocol": "SCTP"}))
    assert allowed(c, "other/client", "app/web", 9000, "SCTP")
    assert not allowed(c, "other/client", "app/web", 9000, "TCP")


def test_protocol_without_port_allows_every_port_of_that_protocol() -> None:
    c = make_cluster(port_policy({"protocol": "UDP"}))
    assert allowed(c, "other/client", "app/web", 1, "UDP") and allowed(c, "other/client", "app/web", 65535, "UDP")
    assert not allowed(c, "other/client", "app/web", 80, "TCP")


def test_end_port_range_is_inclusive() -> None:
    c = make_cluster(port_policy({"port": 32000, "endPort": 32768}))
    assert allowed(c, "other/client", "app/web", 32000)
    assert allowed(c, "other/client", "app/web", 32768)
    assert not allowed(c, "other/client", "app/web", 31999)
    assert not allowed(c, "other/client", "app/web", 32769)


def test_named_ports_resolve_on_the_destination_by_name_and_protocol() -> None:
    c = make_cluster(port_policy({"port": "http"}))
    assert allowed(c, "other/client", "app/web", 8080)
    assert not allowed(c, "other/client", "app/web", 8081)
    assert not allowed(c, "other/client", "app/db", 8080, "TCP")  # db has no port named http
    c = make_cluster(port_policy({"port": "dns"}))  # TCP by default; the container's dns port is UDP
    assert not allowed(c, "other/client", "app/web", 53, "TCP")
    assert not allowed(c, "other/client", "app/web", 53, "UDP")
    c = make_cluster(port_policy({"port": "dns", "protocol": "UDP"}))
    assert allowed(c, "other/client", "app/web", 53, "UDP")


def test_named_ports_of_egress_rules_resolve_on_the_far_pod() -> None:
    c = make_cluster(port_policy({"port": "http"}, direction="egress"))
    assert allowed(c, "app/db", "other/web", 8080)  # other/web names 8080 http
    assert not allowed(c, "app/web", "other/client", 8080)  # other/client has no named ports
    assert not allowed(c, "app/web", "198.51.100.1", 8080)  # nor has an external address


def test_probe_with_a_named_port_resolves_on_the_destination() -> None:
    c = make_cluster(port_policy({"port": 8080}))
    assert c.resolve_port("http", "TCP", c.endpoint("app/web")) == 8080
    with pytest.raises(KeyError, match="no container port named"):
        c.resolve_port("http", "UDP", c.endpoint("app/web"))


# -- empty versus missing ------------------------------------------------------------------------


def test_empty_ingress_list_denies_and_empty_rule_allows_all() -> None:
    assert not allowed(make_cluster(policy("p", {"podSelector": WEB, "ingress": []})), "app/db", "app/web")
    c = make_cluster(policy("p", {"podSelector": WEB, "ingress": [{}]}), DENY_INGRESS)
    assert allowed(c, "203.0.113.1", "app/web", 1, "UDP")
    assert not allowed(c, "203.0.113.1", "app/db", 5432)


def test_empty_from_and_ports_lists_mean_all() -> None:
    c = make_cluster(policy("p", {"podSelector": WEB, "ingress": [{"from": [], "ports": []}]}))
    assert allowed(c, "203.0.113.1", "app/web", 9, "SCTP")
    c = make_cluster(policy("p", {"podSelector": WEB, "ingress": [{"from": [], "ports": [{"port": 8080}]}]}))
    assert allowed(c, "203.0.113.1", "app/web", 8080)
    assert allowed(c, "other/client", "app/web", 8080)
    assert not allowed(c, "other/client", "app/web", 9090)


# -- self, outside the cluster -----------------------------------------------------------------


def test_a_pods_traffic_to_itself_is_always_allowed() -> None:
    c = make_cluster(DENY_ALL)
    v = verdict(c, "app/web", "app/web", 8080)
    assert v.self_traffic and v.allowed
    assert v.ingress is not None and not v.ingress.allowed  # the policies alone would deny
    assert allowed(c, "10.0.0.1", "app/web")  # the pod's own IP is the pod


def test_outside_the_cluster_only_the_pod_side_applies() -> None:
    c = make_cluster(DENY_ALL)
    v = verdict(c, "app/web", "8.8.8.8", 53, "UDP")
    assert v.ingress is None and v.egress is not None and not v.allowed
    v = verdict(c, "8.8.8.8", "other/web", 53, "UDP")
    assert v.egress is None and v.allowed


# -- objects the API server rejects ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "path", "message"),
    [
        ({"podSelector": {}, "ingress": [{"from": [{}]}]}, "spec.ingress[0].from[0]", "must specify a peer"),
        (
            {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
            "spec.ingress[0].from[0]",
            "both ipBlock and another peer",
        ),
        (
            {
                "podSelector": {},
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]}],
            },
            "spec.egress[0].to[0].ipBlock.except[0]",
            "strict subset",
        ),
        (
            {"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}]},
            "spec.egress[0].to[0].ipBlock.except[0]",
            "strict subset",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": "http", "endPort": 90}]}]},
            "spec.ingress[0].ports[0].endPort",
            "named port",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": 90, "endPort": 80}]}]},
            "spec.ingress[0].ports[0].endPort",
            "between",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"endPort": 80}]}]},
            "spec.ingress[0].ports[0].endPort",
            "port is not",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": 80, "protocol": "tcp"}]}]},
            "spec.ingress[0].ports[0].protocol",
            "TCP",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": 0}]}]},
            "spec.ingress[0].ports[0].port",
            "between 1 and 65535",
        ),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": "Not_A_Name"}]}]},
            "spec.ingress[0].ports[0].port",
            "port name",
        ),
        (
            {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]},
            "spec.ingress[0].from[0].ipBlock.cidr",
            "CIDR",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
            "spec.podSelector.matchExpressions[0].values",
            "non-empty",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}},
            "spec.podSelector.matchExpressions[0].values",
            "empty",
        ),
        (
            {"podSelector": {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}},
            "spec.podSelector.matchExpressions[0].operator",
            "one of",
        ),
        ({"podSelector": {"matchLabels": {"app": "has space"}}}, "spec.podSelector.matchLabels.app", "label value"),
        ({"podSelector": {}, "policyTypes": ["ingress"]}, "spec.policyTypes[0]", "Ingress or Egress"),
        ({"ingress": []}, "spec.podSelector", "required"),
    ],
)
def test_invalid_objects_are_rejected_with_their_path(spec: dict[str, object], path: str, message: str) -> None:
    with pytest.raises(PolicyInvalid, match=message) as err:
        parse_policy(policy("bad", spec))
    assert err.value.path == path


def test_valid_edge_objects_are_accepted() -> None:
    p = parse_policy(
        policy(
            "ok",
            {
                "podSelector": {},
                "ingress": [
                    {
                        "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/9"]}}],
                        "ports": [{"port": 80, "endPort": 80}],
                    }
                ],
            },
        )
    )
    assert p.key == "app/ok" and p.affects_ingress and not p.affects_egress
