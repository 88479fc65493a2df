"""Rule matching: protocol/notProtocol, selector/notSelector/namespaceSelector, nets/notNets,
ports/notPorts with ranges and named ports, serviceAccounts, icmp, network sets; what is not
evaluated offline; and validation errors naming the field (selector errors with the column).

Worked by hand from Calico's NetworkPolicy/GlobalNetworkPolicy reference (Rule, EntityRule, Ports)
and libcalico-go's rule conversion (updateprocessors/rules.go: how selectors combine).
"""

from __future__ import annotations

import pytest

from exporter.netpol.calico import NOT_EVALUATED, Peer, PolicySetError
from exporter.netpol.evaluator import ContainerPort
from tests.netpol.calico.helpers import flow, load, pod

CLIENT = Peer.pod("shop", "client-1", {"app": "client"}, {"team": "a"}, ip="10.0.0.5", service_account="buyer",
                  service_account_labels={"role": "reader"})
SERVER = Peer.pod("shop", "server-1", {"app": "server"}, {"team": "a"}, ip="10.0.1.7",
                  ports=(ContainerPort(8443, "TCP", "https"),))
REMOTE = Peer.pod("ops", "probe-1", {"app": "probe"}, {"team": "ops"}, ip="10.0.9.9")


def ingress_rule(rule: str, namespace: str = "shop") -> str:
    """A policy that selects SERVER, allows what `rule` matches and ends in the tier's deny."""
    return f"""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: p, namespace: {namespace}}}
spec:
  selector: app == 'server'
  ingress:
  - {rule}
"""


def allowed(rule: str, src: Peer = CLIENT, port: int | None = 80, protocol: str = "TCP", **icmp: int) -> bool | None:
    return flow(ingress_rule(rule), src, SERVER, port, protocol, **icmp).allowed


@pytest.mark.parametrize(
    ("rule", "protocol", "expected"),
    [
        ("{action: Allow, protocol: TCP}", "TCP", True),
        ("{action: Allow, protocol: TCP}", "UDP", False),
        ("{action: Allow, protocol: 6}", "TCP", True),
        ("{action: Allow, protocol: 17}", "UDP", True),
        ("{action: Allow, protocol: UDPLite}", "136", True),
        ("{action: Allow, protocol: SCTP}", "SCTP", True),
        ("{action: Allow, notProtocol: UDP}", "TCP", True),
        ("{action: Allow, notProtocol: UDP}", "UDP", False),
        ("{action: Allow, protocol: ICMPv6}", "ICMPv6", True),
        ("{action: Allow, protocol: ICMP}", "ICMPv4", True),
    ],
)
def test_protocol(rule: str, protocol: str, expected: bool) -> None:
    assert allowed(rule, protocol=protocol) is expected


@pytest.mark.parametrize(
    ("rule", "port", "expected"),
    [
        ("{action: Allow, protocol: TCP, destination: {ports: [80, 443]}}", 443, True),
        ("{action: Allow, protocol: TCP, destination: {ports: [80, 443]}}", 8080, False),
        ("{action: Allow, protocol: TCP, destination: {ports: ['8000:8999']}}", 8000, True),
        ("{action: Allow, protocol: TCP, destination: {ports: ['8000:8999']}}", 8999, True),
        ("{action: Allow, protocol: TCP, destination: {ports: ['8000:8999']}}", 9000, False),
        ("{action: Allow, protocol: TCP, destination: {notPorts: ['1:1023']}}", 8080, True),
        ("{action: Allow, protocol: TCP, destination: {notPorts: ['1:1023']}}", 22, False),
        ("{action: Allow, protocol: TCP, destination: {ports: [https]}}", 8443, True),  # named port
        ("{action: Allow, protocol: TCP, destination: {ports: [https]}}", 443, False),
        ("{action: Allow, protocol: UDP, destination: {ports: [https]}}", 8443, False),  # UDP has no https
    ],
)
def test_ports_ranges_and_named_ports(rule: str, port: int, expected: bool) -> None:
    protocol = "UDP" if "UDP" in rule else "TCP"
    assert allowed(rule, port=port, protocol=protocol) is expected


def test_named_port_of_an_endpoint_whose_ports_are_unknown_is_not_evaluated() -> None:
    bare = Peer.pod("shop", "server-2", {"app": "server"})
    verdict = flow(ingress_rule("{action: Allow, protocol: TCP, destination: {ports: [https]}}"), CLIENT, bare, 8443)
    assert verdict.ingress is not None and verdict.ingress.status == NOT_EVALUATED
    assert verdict.ingress.reason == "named-port"


def test_source_ports_are_not_evaluated() -> None:
    verdict = flow(ingress_rule("{action: Allow, protocol: TCP, source: {ports: [1234]}}"), CLIENT, SERVER)
    assert verdict.ingress is not None and verdict.ingress.reason == "source-port"


@pytest.mark.parametrize(
    ("source", "src", "expected"),
    [
        ("{selector: app == 'client'}", CLIENT, True),
        ("{selector: app == 'probe'}", REMOTE, False),  # namespaced policy: selector is in `shop` only
        ("{selector: app == 'probe', namespaceSelector: team == 'ops'}", REMOTE, True),
        ("{namespaceSelector: team == 'ops'}", REMOTE, True),
        ("{namespaceSelector: team == 'ops'}", CLIENT, False),
        ("{namespaceSelector: all()}", REMOTE, True),
        ("{namespaceSelector: global()}", REMOTE, False),
        ("{namespaceSelector: projectcalico.org/name == 'ops'}", REMOTE, True),
        ("{notSelector: app == 'client'}", CLIENT, False),
        ("{notSelector: app == 'client'}", pod("shop", "x-1", app="x"), True),
        ("{notSelector: app == 'client'}", REMOTE, False),  # notSelector alone keeps the namespace scope
        ("{selector: has(app), notSelector: \"app in {'client', 'x'}\"}", CLIENT, False),
        ("{nets: [10.0.0.0/24]}", CLIENT, True),
        ("{nets: [10.0.0.0/24]}", REMOTE, False),
        ("{notNets: [10.0.0.0/24]}", REMOTE, True),
        ("{notNets: [10.0.0.0/24]}", CLIENT, False),
        ("{nets: [10.0.0.0/8], notNets: [10.0.9.0/24]}", REMOTE, False),
        ("{serviceAccounts: {names: [buyer]}}", CLIENT, True),
        ("{serviceAccounts: {names: [seller]}}", CLIENT, False),
        ("{serviceAccounts: {selector: role == 'reader'}}", CLIENT, True),
        ("{serviceAccounts: {selector: role == 'writer'}}", CLIENT, False),
        ("{selector: projectcalico.org/serviceaccount == 'buyer'}", CLIENT, True),
    ],
)
def test_source_entity(source: str, src: Peer, expected: bool) -> None:
    assert allowed(f"{{action: Allow, source: {source}}}", src=src) is expected


def test_global_policy_selectors_reach_every_namespace() -> None:
    text = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: g}
spec:
  selector: app == 'server'
  ingress: [{action: Allow, source: {selector: app == 'probe'}}]
"""
    assert flow(text, REMOTE, SERVER).allowed is True
    assert flow(text, CLIENT, SERVER).allowed is False


def test_unknown_service_account_is_not_evaluated() -> None:
    anonymous = Peer.pod("shop", "client-2", {"app": "client"})
    verdict = flow(ingress_rule("{action: Allow, source: {serviceAccounts: {names: [buyer]}}}"), anonymous, SERVER)
    assert verdict.ingress is not None and verdict.ingress.reason == "service-account"
    # A rule that does not match for another reason still decides: the protocol differs.
    rule = "{action: Allow, protocol: UDP, source: {serviceAccounts: {names: [buyer]}}}"
    assert flow(ingress_rule(rule), anonymous, SERVER).allowed is False


@pytest.mark.parametrize(
    ("rule", "icmp", "expected"),
    [
        ("{action: Allow, protocol: ICMP, icmp: {type: 8}}", {"icmp_type": 8}, True),
        ("{action: Allow, protocol: ICMP, icmp: {type: 8}}", {"icmp_type": 0}, False),
        ("{action: Allow, protocol: ICMP, icmp: {type: 3, code: 4}}", {"icmp_type": 3, "icmp_code": 4}, True),
        ("{action: Allow, protocol: ICMP, icmp: {type: 3, code: 4}}", {"icmp_type": 3, "icmp_code": 1}, False),
        ("{action: Allow, protocol: ICMP, notICMP: {type: 8}}", {"icmp_type": 0}, True),
        ("{action: Allow, protocol: ICMP, notICMP: {type: 8}}", {"icmp_type": 8}, False),
        ("{action: Allow, protocol: ICMP, icmp: {type: 8}}", {}, None),  # type not known
    ],
)
def test_icmp(rule: str, icmp: dict[str, int], expected: bool | None) -> None:
    assert allowed(rule, port=None, protocol="ICMPv4", **icmp) is expected


def test_network_sets_are_matched_by_selectors() -> None:
    text = ingress_rule("{action: Allow, source: {selector: role == 'partner', namespaceSelector: global()}}") + """
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: partners, labels: {role: partner}}
spec: {nets: [198.51.100.0/24]}
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: partners-too, namespace: shop, labels: {role: partner}}
spec: {nets: [192.0.2.0/24]}
"""
    assert flow(text, Peer.external("198.51.100.20"), SERVER).allowed is True
    assert flow(text, Peer.external("203.0.113.1"), SERVER).allowed is False
    # A namespaced NetworkSet is not global(); the policy's own namespace scope reaches it instead.
    assert flow(text, Peer.external("192.0.2.1"), SERVER).allowed is False
    local = text.replace(", namespaceSelector: global()", "")
    assert flow(local, Peer.external("192.0.2.1"), SERVER).allowed is True
    assert flow(local, Peer.external("198.51.100.20"), SERVER).allowed is False


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("{action: Allow, http: {methods: [GET]}}", "http-match"),
        ("{action: Allow, destination: {services: {name: api, namespace: shop}}}", "service-match"),
        ("{action: Allow, source: {selector: app == 'x'}}", "host-endpoint"),
    ],
)
def test_what_cannot_be_decided_offline_is_reported(rule: str, reason: str) -> None:
    verdict = flow(ingress_rule(rule), Peer.host("node-1", "10.1.0.1"), SERVER)
    assert verdict.ingress is not None
    assert (verdict.ingress.status, verdict.ingress.reason) == (NOT_EVALUATED, reason)
    assert verdict.allowed is None


def test_host_sides_and_log_rules() -> None:
    verdict = flow(ingress_rule("{action: Allow}"), SERVER, Peer.host("node-1", "10.1.0.1"))
    assert verdict.ingress is not None and verdict.ingress.reason == "host-endpoint"
    # An undecidable Log rule is skipped: Log never decides.
    text = ingress_rule("{action: Log, http: {methods: [GET]}}") + "  - {action: Allow}\n"
    assert flow(text, CLIENT, SERVER).allowed is True


def test_pre_dnat_and_do_not_track_policies_apply_to_host_endpoints_only() -> None:
    text = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: hep}
spec: {preDNAT: true, applyOnForward: true, selector: all(), ingress: [{action: Deny}]}
"""
    assert flow(text, CLIENT, SERVER).allowed is True


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{action: Allow, source: {selector: app = 'x'}}",
         "spec.ingress[0].source.selector: column 5: expected '==' in \"app = 'x'\""),
        ("{action: Allow, destination: {ports: [80]}}",
         "spec.ingress[0].destination: ports and notPorts need the rule's protocol to be TCP, UDP or SCTP"),
        ("{action: Allow, protocol: TCP, destination: {ports: ['90:80']}}",
         "spec.ingress[0].destination.ports[0]: a port range needs 0 <= first <= last <= 65535"),
        ("{action: Allow, protocol: TCP, destination: {ports: ['Bad_Name']}}",
         "spec.ingress[0].destination.ports[0]: invalid port name"),
        ("{action: Accept}", "spec.ingress[0].action: must be Allow, Deny, Pass or Log, got 'Accept'"),
        ("{action: Allow, protocol: HTTP}", "spec.ingress[0].protocol: must be TCP, UDP"),
        ("{action: Allow, protocol: TCP, icmp: {type: 8}}", "spec.ingress[0].icmp: needs protocol ICMP or ICMPv6"),
        ("{action: Allow, source: {nets: [10.0.0.0]}}", "spec.ingress[0].source.nets[0]: must be a CIDR"),
        ("{action: Allow, source: {selectr: all()}}", "spec.ingress[0].source: unknown field(s) ['selectr']"),
    ],
)
def test_invalid_rules_name_document_and_field(rule: str, message: str) -> None:
    with pytest.raises(PolicySetError) as info:
        load(ingress_rule(rule))
    assert info.value.problems[0].startswith("document 1 (NetworkPolicy shop/p): ")
    assert message in info.value.problems[0]
