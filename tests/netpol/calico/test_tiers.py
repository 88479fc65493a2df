"""Tier and policy order, Pass, end-of-tier defaultAction, skipped tiers, profiles, staged policies.

Each case is worked by hand from Calico's tier documentation ("Get started with policy tiers":
tiers in order, first matching rule decides, Pass goes to the next tier, a tier that selects the
endpoint and decides nothing denies unless its defaultAction is Pass, no tier → profile allows) and
felix's policy-resolution order (tier order, then policy order with unset last, then name).
"""

from __future__ import annotations

import pytest

from exporter.netpol.calico import NOT_EVALUATED, PolicySetError
from tests.netpol.calico.helpers import flow, load, pod, side

WEB = pod("shop", "web-7d9f8c6b5d-x2x4z", app="web")
API = pod("shop", "api-0", app="api")
OTHER = pod("other", "job-1", app="job")


def tiers(order_a: int, order_b: int, action_a: str = "Deny", action_b: str = "Allow") -> str:
    return f"""
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {{name: security}}
spec: {{order: {order_a}}}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {{name: platform}}
spec: {{order: {order_b}}}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: security.block}}
spec:
  tier: security
  selector: app == 'api'
  ingress: [{{action: {action_a}, protocol: TCP, destination: {{ports: [80]}}}}]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: open, namespace: shop}}
spec:
  tier: platform
  selector: app == 'api'
  ingress: [{{action: {action_b}}}]
"""


def test_lower_tier_order_decides_first() -> None:
    assert side(flow(tiers(100, 200), WEB, API), "ingress") == ("deny", "security.block", 0)
    assert side(flow(tiers(300, 200), WEB, API), "ingress") == ("allow", "shop/platform.open", 0)


def test_pass_hands_over_to_the_next_tier() -> None:
    verdict = flow(tiers(100, 200, action_a="Pass"), WEB, API)
    assert side(verdict, "ingress") == ("allow", "shop/platform.open", 0)
    assert verdict.ingress is not None and verdict.ingress.passed == ("security.block",)


def test_end_of_tier_deny_when_the_tier_selects_and_nothing_matches() -> None:
    """Port 81 matches no rule of `security`: its implicit deny, charged to its last selecting policy."""
    verdict = flow(tiers(100, 200, action_b="Deny"), WEB, API, port=81)
    assert side(verdict, "ingress") == ("deny", "security.block", -1)
    assert verdict.ingress is not None and verdict.ingress.tier == "security"


def test_tier_that_does_not_select_the_endpoint_is_skipped() -> None:
    """`security` selects app=api only: traffic to web skips it; no tier selects web → profile allows."""
    verdict = flow(tiers(100, 200), API, WEB)
    assert side(verdict, "ingress") == ("allow", "default-allow", None)
    assert side(verdict, "egress") == ("allow", "default-allow", None)
    assert verdict.allowed is True


def test_default_action_pass_and_then_the_profile() -> None:
    text = """
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: audit}
spec: {order: 10, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: audit.watch}
spec:
  tier: audit
  selector: all()
  ingress: [{action: Log}, {action: Deny, source: {selector: app == 'job'}}]
"""
    # Log decides nothing, the Deny rule does not match web: defaultAction Pass → no more tiers → profile.
    assert side(flow(text, WEB, API), "ingress") == ("allow", "default-allow", None)
    assert side(flow(text, OTHER, API), "ingress") == ("deny", "audit.watch", 1)
    # Without `defaultAction: Pass` the same tier ends in a deny.
    denying = text.replace(", defaultAction: Pass", "")
    assert side(flow(denying, WEB, API), "ingress") == ("deny", "audit.watch", -1)


def test_policy_order_within_a_tier_unset_last_then_name() -> None:
    def policies(first: str, second: str) -> str:
        return f"""
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: b-allow, namespace: shop}}
spec: {{{first} ingress: [{{action: Allow}}]}}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: a-deny, namespace: shop}}
spec: {{{second} ingress: [{{action: Deny}}]}}
"""
    assert side(flow(policies("order: 5,", "order: 10,"), WEB, API), "ingress")[1] == "shop/b-allow"
    assert side(flow(policies("order: 10,", "order: 5,"), WEB, API), "ingress")[1] == "shop/a-deny"
    assert side(flow(policies("", "order: 500,"), WEB, API), "ingress")[1] == "shop/a-deny"  # unset is last
    assert side(flow(policies("order: 7,", "order: 7,"), WEB, API), "ingress")[1] == "shop/a-deny"  # by name
    assert side(flow(policies("", ""), WEB, API), "ingress")[1] == "shop/a-deny"


KNP = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: api-from-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: 80}]}]
"""


def calico_deny(order: int) -> str:
    return f"""
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: no-web, namespace: shop}}
spec:
  order: {order}
  selector: app == 'api'
  ingress: [{{action: Deny, source: {{selector: app == 'web'}}}}]
"""


def test_kubernetes_policies_sit_in_the_default_tier_at_order_1000() -> None:
    assert side(flow(KNP, WEB, API), "ingress") == ("allow", "shop/api-from-web", 0)
    assert side(flow(KNP, WEB, API, port=443), "ingress") == ("deny", "shop/api-from-web", -1)
    assert side(flow(KNP, OTHER, API), "ingress") == ("deny", "shop/api-from-web", -1)
    assert side(flow(KNP + calico_deny(999), WEB, API), "ingress") == ("deny", "shop/no-web", 0)
    assert side(flow(KNP + calico_deny(1001), WEB, API), "ingress") == ("allow", "shop/api-from-web", 0)


def test_types_limit_the_direction_and_default_as_calico_defaults_them() -> None:
    egress_only = """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: out, namespace: shop}
spec:
  selector: app == 'api'
  egress: [{action: Deny}]
"""
    verdict = flow(egress_only, API, WEB)
    assert side(verdict, "egress") == ("deny", "shop/out", 0)
    assert side(flow(egress_only, WEB, API), "ingress") == ("allow", "default-allow", None)
    # No rules at all: types default to [Ingress] → the tier selects, nothing matches → deny.
    empty = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: iso, namespace: shop}\nspec: {}"
    assert side(flow(empty, WEB, API), "ingress") == ("deny", "shop/iso", -1)
    assert side(flow(empty, API, WEB), "egress") == ("allow", "default-allow", None)


def test_namespaced_policies_select_in_their_namespace_global_ones_everywhere() -> None:
    text = """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: iso, namespace: shop}
spec: {selector: all(), ingress: [{action: Deny}]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: team-other}
spec:
  order: 1
  namespaceSelector: team == 'other'
  ingress: [{action: Allow}]
"""
    assert side(flow(text, WEB, API), "ingress") == ("deny", "shop/iso", 0)
    assert side(flow(text, WEB, OTHER), "ingress") == ("allow", "team-other", 0)


STAGED = """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec: {selector: app == 'api', ingress: [{action: Allow, source: {selector: app == 'web'}}]}
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: lockdown, namespace: shop}
spec: {selector: app == 'api', order: 1, ingress: [{action: Deny}]}
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec: {stagedAction: Delete, selector: app == 'api'}
---
apiVersion: projectcalico.org/v3
kind: StagedKubernetesNetworkPolicy
metadata: {name: k-staged, namespace: shop}
spec: {podSelector: {}, policyTypes: [Egress]}
"""


def test_staged_policies_enforce_nothing_until_enforced() -> None:
    policy_set = load(STAGED)
    assert len(policy_set.staged) == 3
    assert side(flow(policy_set, WEB, API), "ingress") == ("allow", "shop/allow-web", 0)
    assert side(flow(policy_set, API, WEB), "egress") == ("allow", "default-allow", None)
    enforced = policy_set.with_staged_enforced()
    assert sorted(p.label for p in enforced.policies) == ["shop/k-staged", "shop/lockdown"]
    assert side(flow(enforced, WEB, API), "ingress") == ("deny", "shop/lockdown", 0)
    assert side(flow(enforced, API, WEB), "egress") == ("deny", "shop/k-staged", -1)


def test_staged_set_replaces_the_policy_of_the_same_name() -> None:
    replace = STAGED.split("---")[0] + """---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec: {stagedAction: Set, selector: app == 'api', ingress: [{action: Allow, source: {selector: app == 'job'}}]}
"""
    enforced = load(replace).with_staged_enforced()
    assert [p.label for p in enforced.policies] == ["shop/allow-web"]
    assert side(flow(enforced, WEB, API), "ingress") == ("deny", "shop/allow-web", -1)


def test_undefined_tier_is_not_guessed() -> None:
    text = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: mystery.p}
spec: {tier: mystery, selector: all(), ingress: [{action: Allow}]}
"""
    policy_set = load(text)
    assert any("tier 'mystery'" in w for w in policy_set.warnings)
    verdict = flow(policy_set, WEB, API)
    assert verdict.ingress is not None and verdict.ingress.status == NOT_EVALUATED
    assert verdict.ingress.reason == "tier-undefined"
    assert verdict.allowed is None


@pytest.mark.parametrize(
    ("tier", "name", "namespace", "label"),
    [
        ("default", "p", "shop", "shop/p"),
        ("default", "default.p", "shop", "shop/p"),
        ("t1", "p", "shop", "shop/t1.p"),
        ("t1", "t1.p", "shop", "shop/t1.p"),  # never doubled
        ("t1", "t1.p", None, "t1.p"),
        ("default", "p", None, "p"),
    ],
)
def test_labels_are_the_contract_values(tier: str, name: str, namespace: str | None, label: str) -> None:
    kind = "NetworkPolicy" if namespace else "GlobalNetworkPolicy"
    ns = f", namespace: {namespace}" if namespace else ""
    text = f"""
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {{name: t1}}
spec: {{order: 5}}
---
apiVersion: projectcalico.org/v3
kind: {kind}
metadata: {{name: {name}{ns}}}
spec: {{tier: {tier}, ingress: [{{action: Deny}}]}}
"""
    assert side(flow(text, WEB, API), "ingress") == ("deny", label, 0)


def test_self_traffic_and_external_sides() -> None:
    text = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: iso, namespace: shop}\nspec: {}"
    assert flow(text, API, API).allowed is True
    from exporter.netpol.calico import Peer

    verdict = flow(text, Peer.external("203.0.113.9"), API)
    assert verdict.egress is None
    assert side(verdict, "ingress") == ("deny", "shop/iso", -1)


def test_order_ties_break_on_name_before_namespace() -> None:
    """felix PolKVLess: equal orders compare "name/namespace/kind": global `t` sorts before `u` in
    namespace `shop` (by "namespace/name" it would be the other way round: "shop/u" < "t")."""
    text = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: t}
spec: {order: 1, ingress: [{action: Deny}]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: u, namespace: shop}
spec: {order: 1, ingress: [{action: Allow}]}
"""
    assert side(flow(text, WEB, API), "ingress") == ("deny", "t", 0)


@pytest.mark.parametrize(
    ("order_a", "order_b", "first"),
    [
        ("order: 10", "order: 1", "b"),  # by order
        ("", "order: 1", "b"),  # an ordered tier before one without order
        ("", "", "a"),  # both without order: by name
        ("order: 5", "order: 5", "a"),  # equal orders: by name
    ],
)
def test_tier_sorting_as_felix_sorts_tiers(order_a: str, order_b: str, first: str) -> None:
    """Cases of felix calc/policy_sorter_test.go TestPolicySorter_Sorting, as verdicts: tier `a` denies,
    tier `b` allows; whichever sorts first decides."""
    text = f"""
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {{name: a}}
spec: {{{order_a}}}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {{name: b}}
spec: {{{order_b}}}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: a.deny}}
spec: {{tier: a, ingress: [{{action: Deny}}]}}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: b.allow}}
spec: {{tier: b, ingress: [{{action: Allow}}]}}
"""
    verdict = flow(text, WEB, API)
    assert verdict.ingress is not None and verdict.ingress.tier == first


def test_staged_global_policy_in_a_tier() -> None:
    text = """
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 10}
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata: {name: security.quarantine}
spec: {tier: security, selector: app == 'api', ingress: [{action: Deny, source: {selector: app == 'web'}}]}
"""
    policy_set = load(text)
    assert policy_set.policies == [] and [p.label for p in policy_set.staged] == ["security.quarantine"]
    assert side(flow(policy_set, WEB, API), "ingress") == ("allow", "default-allow", None)
    enforced = policy_set.with_staged_enforced()
    assert side(flow(enforced, WEB, API), "ingress") == ("deny", "security.quarantine", 0)
    assert side(flow(enforced, OTHER, API), "ingress") == ("deny", "security.quarantine", -1)
    with pytest.raises(PolicySetError, match=r"spec\.stagedAction: must be Set or Delete, got 'Apply'"):
        load(text.replace("spec: {tier: security,", "spec: {stagedAction: Apply, tier: security,"))


def test_info_kinds() -> None:
    policy_set = load(KNP + calico_deny(1) + "---" + STAGED.split("---", 1)[1] + """
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: g}
spec: {}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: a}
spec: {priority: 1, subject: {namespaces: {}}}
""")
    kinds = sorted((p.label, p.info_kind) for p in policy_set.policies + policy_set.staged)
    assert kinds == [
        ("adminnetworkpolicy.a", "AdminNetworkPolicy"),
        ("g", "GlobalNetworkPolicy"),
        ("shop/allow-web", "StagedNetworkPolicy"),
        ("shop/api-from-web", "NetworkPolicy"),
        ("shop/k-staged", "StagedKubernetesNetworkPolicy"),
        ("shop/lockdown", "StagedNetworkPolicy"),
        ("shop/no-web", "CalicoNetworkPolicy"),
    ]
