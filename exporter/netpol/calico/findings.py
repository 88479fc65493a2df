"""Calico-specific findings on a policy set, which `lint` reports:

- `tier-without-pass`: a tier whose defaultAction is Deny and whose policies have no trailing catch-all
  Pass or Allow for the endpoints they select: whatever its rules do not decide is dropped at the end
  of the tier and never reaches later tiers (the default tier's Kubernetes policies included).
- `order-tie`: two policies of a tier with the same order (or both without one) that can select the
  same endpoints and whose actions differ: only their names decide which runs first.
- `shadowed-rule`: a rule that never runs, because an earlier rule of the same policy matches every
  flow (or the same flows), or an earlier policy of the tier selects every endpoint the policy selects
  and decides every flow with a catch-all rule.

Every finding is sound (no flow could prove it wrong); overlaps the engine cannot prove are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import combinations

from exporter.netpol.calico.model import (
    ALLOW,
    DENY,
    EGRESS,
    INGRESS,
    LOG,
    PASS,
    Policy,
    PolicySet,
    Rule,
    Tier,
)
from exporter.netpol.calico.parse import KUBERNETES_POLICY
from exporter.netpol.calico.selector import Selector

DIRECTIONS = (INGRESS, EGRESS)


@dataclass(frozen=True)
class Finding:
    check: str  # tier-without-pass | order-tie | shadowed-rule
    policy: str  # contract label of the policy the finding is about
    message: str
    source: str = ""  # where the policy was read from


def _applies(policy: Policy, direction: str) -> bool:
    return ("Ingress" if direction == INGRESS else "Egress") in policy.types and not policy.host_only


def catch_all(rule: Rule) -> bool:
    """A rule with no match criteria: it matches every flow."""
    return replace(rule, action=ALLOW, index=0) == Rule(ALLOW, 0)


def _selects_all_in_scope(policy: Policy) -> bool:
    """The policy selects every pod of its scope (its namespace, or every namespace when global)."""
    if policy.service_account_selector is not None or policy.host_only:
        return False
    selector = policy.selector
    if policy.namespace is not None:  # AllOf((InNamespace(ns), selector))
        selector = selector.parts[-1]  # type: ignore[attr-defined]
        if not isinstance(selector, Selector):
            return bool(getattr(selector, "selects_all", False))  # a Kubernetes LabelSelector
    return isinstance(selector, Selector) and selector.selects_all


def _covers(wide: Policy, narrow: Policy) -> bool:
    """`wide` selects every endpoint `narrow` can select: it selects all of a scope that holds
    `narrow`'s, or it has the very same selection."""
    if _selects_all_in_scope(wide) and (wide.namespace is None or wide.namespace == narrow.namespace):
        return True
    return not wide.host_only and (wide.namespace, wide.selector, wide.service_account_selector) == (
        narrow.namespace, narrow.selector, narrow.service_account_selector)


def _may_overlap(a: Policy, b: Policy) -> bool:
    return a.namespace is None or b.namespace is None or a.namespace == b.namespace


def _actions(policy: Policy, direction: str) -> set[str]:
    return {r.action for r in policy.rules(direction) if r.action != LOG}


def _tier_without_pass(tier: Tier, policies: list[Policy]) -> list[Finding]:
    if tier.default_action != DENY or tier.name == "default" or not tier.defined:
        return []
    found = []
    for direction in DIRECTIONS:
        applying = [p for p in policies if _applies(p, direction)]
        closers = [p for p in applying if any(catch_all(r) and r.action in (PASS, ALLOW) for r in p.rules(direction))]
        open_policies = [p for p in applying if not any(_covers(c, p) for c in closers)]
        if open_policies:
            last = open_policies[-1]
            names = ", ".join(p.label for p in open_policies)
            found.append(Finding(
                "tier-without-pass", last.label,
                f"tier {tier.name} (defaultAction Deny) drops the {direction} traffic its rules do not decide for "
                f"the endpoints {names} select{'s' if len(open_policies) == 1 else ''}: it never reaches later "
                "tiers; end the tier with a policy that selects all() and passes (a rule with only `action: Pass`,"
                " order after the others) or set the tier's defaultAction: Pass",
                last.source,
            ))
    return found


def _order_ties(policies: list[Policy]) -> list[Finding]:
    found = []
    for a, b in combinations(policies, 2):
        if a.order != b.order or a.kind == b.kind == KUBERNETES_POLICY or not _may_overlap(a, b):
            continue
        directions = [d for d in DIRECTIONS if _applies(a, d) and _applies(b, d)
                      and len(_actions(a, d) | _actions(b, d)) > 1]
        if directions:
            order = "no order" if a.order is None else f"order {a.order:g}"
            found.append(Finding(
                "order-tie", b.label,
                f"{a.label} and {b.label} in tier {a.tier} both have {order} and different actions "
                f"({', '.join(directions)}): only their names decide that {a.label} runs first; give them "
                "distinct orders",
                b.source,
            ))
    return found


def _criteria(rule: Rule) -> Rule:
    return replace(rule, action=ALLOW, index=0)


def _shadowed(policies: list[Policy]) -> list[Finding]:
    found = []
    for direction in DIRECTIONS:
        applying = [p for p in policies if _applies(p, direction)]
        deciders: list[tuple[Policy, Rule]] = []  # earlier policies' catch-all rules that decide
        for policy in applying:
            rules = [r for r in policy.rules(direction) if r.action != LOG]
            blocker = next(((p, r) for p, r in deciders if _covers(p, policy)), None)
            if blocker is not None and rules:
                p, r = blocker
                found.append(Finding(
                    "shadowed-rule", policy.label,
                    f"the {direction} rules of {policy.label} never run: {p.label} selects every endpoint it "
                    f"selects and its {direction} rule {r.index} ({r.action}) decides every flow first",
                    policy.source,
                ))
                continue
            seen: list[Rule] = []
            for rule in rules:
                earlier = next((e for e in seen if catch_all(e) or _criteria(e) == _criteria(rule)), None)
                if earlier is not None:
                    found.append(Finding(
                        "shadowed-rule", policy.label,
                        f"{direction} rule {rule.index} of {policy.label} never runs: rule {earlier.index} "
                        f"({earlier.action}) matches {'every flow' if catch_all(earlier) else 'the same flows'} first",
                        policy.source,
                    ))
                seen.append(rule)
            catch = next((r for r in rules if catch_all(r)), None)
            if catch is not None:
                deciders.append((policy, catch))
    return found


def calico_findings(policy_set: PolicySet) -> list[Finding]:
    """Every finding of the three checks, tier by tier in evaluation order."""
    findings: list[Finding] = []
    for tier, policies in policy_set.ordered():
        findings += _tier_without_pass(tier, policies)
        findings += _order_ties(policies)
        findings += _shadowed(policies)
    return findings


__all__ = ["Finding", "calico_findings", "catch_all"]
