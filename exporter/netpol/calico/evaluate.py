"""Evaluate a flow against a tiered policy set, as felix does on each side of the connection.

Per side (egress at the source pod, ingress at the destination pod): tiers in order; a tier with no
policy selecting the endpoint (for that direction) is skipped; in a tier, policies in order and their
rules in order, the first matching rule decides: Allow or Deny ends evaluation, Pass moves on to the
next tier, Log records nothing and goes on. A tier that selects the endpoint and decides nothing ends
in its defaultAction (Deny, charged to the last policy of the tier that selected the endpoint, rule -1,
as Calico's flow logs name it; or Pass). With no tier deciding, the namespace profile allows.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.netpol.calico.model import (
    ALLOW,
    DENY,
    EGRESS,
    INGRESS,
    LOG,
    PASS,
    PORT_PROTOCOLS,
    EntityMatch,
    LabelMatcher,
    Match,
    NetworkSet,
    Peer,
    Policy,
    PolicySet,
    PortSpec,
    Rule,
    Unknown,
    all_of,
    protocol_number,
)

ALLOWED, DENIED, NOT_EVALUATED = "allow", "deny", "not-evaluated"
PROFILE_ALLOW = "default-allow"  # the contract's value for a namespace-profile allow


@dataclass(frozen=True)
class Flow:
    port: int | None  # destination port
    protocol: int | None  # IANA number; None = not known
    icmp_type: int | None = None
    icmp_code: int | None = None


@dataclass(frozen=True)
class SideResult:
    """One side's verdict. `policy` is the contract label of the deciding policy (None for a profile
    allow); `rule` its rule index, -1 for the end-of-tier default action. `reason` says why a side was
    not evaluated. `passed` lists what passed the decision on (policies' Pass rules, `<tier>` for a
    tier whose defaultAction is Pass)."""

    direction: str
    status: str  # allow | deny | not-evaluated
    policy: str | None = None
    tier: str | None = None
    rule: int | None = None
    reason: str | None = None
    passed: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.status == ALLOWED

    @property
    def label(self) -> str | None:
        """The contract's policy label value for this side (`default-allow` for a profile allow)."""
        if self.status == ALLOWED and self.policy is None:
            return PROFILE_ALLOW
        return self.policy


@dataclass(frozen=True)
class FlowVerdict:
    egress: SideResult | None  # None: the source is not a pod (no policy of its own applies)
    ingress: SideResult | None  # None: the destination is not a pod
    self_traffic: bool = False

    @property
    def allowed(self) -> bool | None:
        """True/False; None when a side was not evaluated and no side denies."""
        if self.self_traffic:
            return True
        sides = [s for s in (self.egress, self.ingress) if s is not None]
        if any(s.status == DENIED for s in sides):
            return False
        if any(s.status == NOT_EVALUATED for s in sides):
            return None
        return True


def _selector_match(matcher: LabelMatcher, peer: Peer, network_sets: list[NetworkSet]) -> Match:
    """Whether a rule selector matches a peer: its endpoint labels, or a network set holding its IP."""
    if peer.kind != "external":  # an address outside the cluster has no labels; only network sets
        labels = peer.calico_labels()
        if labels is None:
            return Unknown("host-endpoint")  # a host's HostEndpoint labels are not known offline
        if matcher.matches(labels):
            return True
    if peer.ip is None:
        return Unknown("peer-ip") if network_sets and peer.kind != "pod" else False
    ip = peer.ip
    return any(s.contains(ip) and matcher.matches(s.calico_labels()) for s in network_sets)


def _nets_match(nets: tuple, peer: Peer) -> Match:
    if peer.ip is None:
        return Unknown("peer-ip")
    ip = peer.ip
    return any(ip.version == n.version and ip in n for n in nets)


_PROTOCOL_NAMES = {6: "TCP", 17: "UDP", 132: "SCTP"}  # a container port's protocol


def _port_match(spec: PortSpec, port: int, protocol: int | None, peer: Peer) -> Match:
    if spec.name is None:
        return spec.low <= port <= spec.high
    if not peer.ports:
        return Unknown("named-port")
    return any(cp.name == spec.name and cp.port == port and cp.protocol == _PROTOCOL_NAMES.get(protocol or 0)
               for cp in peer.ports)


def _ports_match(specs: tuple[PortSpec, ...], flow: Flow, peer: Peer, is_source: bool) -> Match:
    if is_source:
        return Unknown("source-port")  # flows carry the destination port only
    if flow.protocol not in PORT_PROTOCOLS:
        return False  # Calico allows ports only with TCP, UDP, SCTP: a portless flow never matches
    if flow.port is None:
        return Unknown("port")
    results = [_port_match(s, flow.port, flow.protocol, peer) for s in specs]
    if any(r is True for r in results):
        return True
    return next((r for r in results if isinstance(r, Unknown)), False)


def _negate(match: Match) -> Match:
    return match if isinstance(match, Unknown) else not match


def _entity_match(entity: EntityMatch, peer: Peer, flow: Flow, is_source: bool, sets: list[NetworkSet]) -> Match:
    parts: list[Match] = []
    if entity.unsupported:
        parts.append(Unknown(entity.unsupported))
    if entity.nets:
        parts.append(_nets_match(entity.nets, peer))
    if entity.not_nets:
        parts.append(_negate(_nets_match(entity.not_nets, peer)))
    if entity.ports:
        parts.append(_ports_match(entity.ports, flow, peer, is_source))
    if entity.not_ports:
        parts.append(_negate(_ports_match(entity.not_ports, flow, peer, is_source)))
    if entity.service_account_names is not None or entity.service_account_selector is not None:
        if peer.kind != "pod":
            parts.append(False)
        elif peer.service_account is None:
            parts.append(Unknown("service-account"))
        else:
            if entity.service_account_names is not None:
                parts.append(peer.service_account in entity.service_account_names)
            if entity.service_account_selector is not None:
                labels = peer.calico_labels() or {}
                parts.append(entity.service_account_selector.matches(labels))
    if entity.selector is not None:
        parts.append(_selector_match(entity.selector, peer, sets))
    if entity.not_selector is not None:
        parts.append(_negate(_selector_match(entity.not_selector, peer, sets)))
    return all_of(*parts)


def _icmp_match(spec: tuple[int | None, int | None], flow: Flow) -> Match:
    icmp_type, icmp_code = spec
    if flow.protocol not in (1, 58):
        return False
    parts: list[Match] = []
    if icmp_type is not None:
        parts.append(Unknown("icmp-type") if flow.icmp_type is None else flow.icmp_type == icmp_type)
    if icmp_code is not None:
        parts.append(Unknown("icmp-code") if flow.icmp_code is None else flow.icmp_code == icmp_code)
    return all_of(*parts)


def rule_matches(rule: Rule, src: Peer, dst: Peer, flow: Flow, sets: list[NetworkSet]) -> Match:
    """Whether a rule matches the flow (source/destination are the flow's, whatever the direction)."""
    parts: list[Match] = []
    if rule.unsupported:
        parts.append(Unknown(rule.unsupported))
    if rule.protocol is not None or rule.not_protocol is not None:
        if flow.protocol is None:
            parts.append(Unknown("protocol"))
        else:
            if rule.protocol is not None:
                parts.append(flow.protocol == rule.protocol)
            if rule.not_protocol is not None:
                parts.append(flow.protocol != rule.not_protocol)
    if rule.icmp is not None:
        parts.append(_icmp_match(rule.icmp, flow))
    if rule.not_icmp is not None:
        parts.append(_negate(_icmp_match(rule.not_icmp, flow)))
    if rule.ip_version is not None:
        ip = src.ip or dst.ip
        parts.append(Unknown("ip-version") if ip is None else ip.version == rule.ip_version)
    if False in parts:
        return False
    parts.append(_entity_match(rule.source, src, flow, True, sets))
    parts.append(_entity_match(rule.destination, dst, flow, False, sets))
    return all_of(*parts)


def policy_selects(policy: Policy, endpoint: Peer, direction: str) -> Match:
    if ("Ingress" if direction == INGRESS else "Egress") not in policy.types or policy.host_only:
        return False
    if policy.namespace is not None and policy.namespace != endpoint.namespace:
        return False
    labels = endpoint.calico_labels() or {}
    if not policy.selector.matches(labels):
        return False
    if policy.service_account_selector is not None:
        if endpoint.service_account is None:
            return Unknown("service-account")
        return policy.service_account_selector.matches(labels)
    return True


def evaluate_side(policy_set: PolicySet, direction: str, src: Peer, dst: Peer, flow: Flow) -> SideResult | None:
    endpoint = src if direction == EGRESS else dst
    if endpoint.kind == "external":
        return None
    if endpoint.kind == "host":
        return SideResult(direction, NOT_EVALUATED, reason="host-endpoint")
    sets = policy_set.network_sets
    passed: list[str] = []
    for tier, policies in policy_set.candidates(endpoint.namespace):
        applicable: list[Policy] = []
        for policy in policies:
            selected = policy_selects(policy, endpoint, direction)
            if isinstance(selected, Unknown):
                return SideResult(direction, NOT_EVALUATED, policy.label, tier.name, reason=selected.reason,
                                  passed=tuple(passed))
            if selected:
                applicable.append(policy)
        if not applicable:
            continue  # a tier that does not select the endpoint is skipped
        if not tier.defined:
            return SideResult(direction, NOT_EVALUATED, applicable[0].label, tier.name, reason="tier-undefined",
                              passed=tuple(passed))
        passed_on = False
        for policy in applicable:
            for rule in policy.rules(direction):
                if rule.action == LOG:
                    continue
                match = rule_matches(rule, src, dst, flow, sets)
                if isinstance(match, Unknown):
                    return SideResult(direction, NOT_EVALUATED, policy.label, tier.name, rule.index,
                                      match.reason, tuple(passed))
                if not match:
                    continue
                if rule.action == PASS:
                    passed.append(policy.label)
                    passed_on = True
                    break
                status = ALLOWED if rule.action == ALLOW else DENIED
                return SideResult(direction, status, policy.label, tier.name, rule.index, passed=tuple(passed))
            if passed_on:
                break
        if passed_on:
            continue
        if tier.default_action == PASS:
            passed.append(tier.name)
            continue
        return SideResult(direction, DENIED, applicable[-1].label, tier.name, -1, passed=tuple(passed))
    return SideResult(direction, ALLOWED, None, None, None, passed=tuple(passed))


def evaluate(
    policy_set: PolicySet,
    src: Peer,
    dst: Peer,
    port: int | None,
    protocol: str | int,
    icmp_type: int | None = None,
    icmp_code: int | None = None,
) -> FlowVerdict:
    """The verdict of each side for a flow `src` → `dst` on `protocol`/`port` (ICMP: type and code)."""
    number = protocol_number(protocol)
    flow = Flow(port, number, icmp_type, icmp_code)
    self_traffic = src.kind == "pod" and src.key == dst.key
    return FlowVerdict(
        egress=evaluate_side(policy_set, EGRESS, src, dst, flow),
        ingress=evaluate_side(policy_set, INGRESS, src, dst, flow),
        self_traffic=self_traffic,
    )


__all__ = ["ALLOW", "DENY", "EGRESS", "INGRESS", "FlowVerdict", "SideResult", "evaluate", "evaluate_side"]
