"""AdminNetworkPolicy → NetworkPolicy → BaselineAdminNetworkPolicy, ClusterNetworkPolicy tiers, and the
admin tiers among Calico's tiers by order.

Worked by hand from the network-policy-api documentation (ANP priority, Allow/Deny/Pass, BANP as the
fallback when no NetworkPolicy selects the pod) and Calico's tiers for them (adminnetworkpolicy at
order 1000 and baselineadminnetworkpolicy at 10,000,000, both defaultAction Pass; kube-admin and
kube-baseline for ClusterNetworkPolicy).
"""

from __future__ import annotations

import pytest

from exporter.netpol.calico import NOT_EVALUATED, Peer, PolicySetError
from exporter.netpol.evaluator import ContainerPort
from tests.netpol.calico.helpers import flow, load, side

WEB = Peer.pod("shop", "web-1", {"app": "web"}, {"env": "prod"}, ip="10.0.0.5")
DB = Peer.pod("data", "db-0", {"app": "db"}, {"env": "prod"}, ip="10.0.1.7", ports=(ContainerPort(5432, "TCP", "pg"),))
DEV = Peer.pod("dev", "tool-1", {"app": "tool"}, {"env": "dev"}, ip="10.0.2.2")


def anp(name: str, priority: int, action: str, peer: str = "{namespaces: {matchLabels: {env: dev}}}",
        ports: str = "") -> str:
    return f"""
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {{name: {name}}}
spec:
  priority: {priority}
  subject: {{pods: {{namespaceSelector: {{}}, podSelector: {{matchLabels: {{app: db}}}}}}}}
  ingress: [{{name: r, action: {action}, from: [{peer}]{ports}}}]
"""


NP_ALLOW_DEV = """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-dev, namespace: data}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{namespaceSelector: {matchLabels: {env: dev}}}]}]
"""

BANP_DENY_DEV = """
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {matchLabels: {env: dev}}}]}]
"""


@pytest.mark.parametrize("cni", ["calico", "kubernetes"])
def test_admin_then_network_policy_then_baseline(cni: str) -> None:
    def check(text: str, src: Peer = DEV) -> tuple[str, str | None, int | None]:
        return side(flow(load(text, cni), src, DB, 5432), "ingress")

    assert check(anp("block-dev", 10, "Deny") + NP_ALLOW_DEV) == ("deny", "adminnetworkpolicy.block-dev", 0)
    assert check(anp("let-dev", 10, "Allow") + BANP_DENY_DEV) == ("allow", "adminnetworkpolicy.let-dev", 0)
    # Pass: the NetworkPolicy decides (it allows dev) ...
    assert check(anp("defer", 10, "Pass") + NP_ALLOW_DEV + BANP_DENY_DEV) == ("allow", "data/db-from-dev", 0)
    # ... and where no NetworkPolicy selects the pod, the baseline does.
    assert check(anp("defer", 10, "Pass") + BANP_DENY_DEV) == ("deny", "baselineadminnetworkpolicy.default", 0)
    # An ANP that does not match falls through (its tier's defaultAction is Pass); nothing else → allowed.
    assert check(anp("block-dev", 10, "Deny"), WEB) == ("allow", "default-allow", None)
    # The NetworkPolicy isolates db: web is denied there, and the baseline is never reached.
    assert check(NP_ALLOW_DEV + BANP_DENY_DEV, WEB) == ("deny", "data/db-from-dev", -1)
    assert check(BANP_DENY_DEV, WEB) == ("allow", "default-allow", None)


def test_lower_priority_number_wins() -> None:
    text = anp("first", 5, "Allow") + anp("second", 50, "Deny")
    assert side(flow(text, DEV, DB), "ingress") == ("allow", "adminnetworkpolicy.first", 0)
    text = anp("first", 60, "Allow") + anp("second", 50, "Deny")
    assert side(flow(text, DEV, DB), "ingress") == ("deny", "adminnetworkpolicy.second", 0)


@pytest.mark.parametrize(
    ("ports", "port", "expected"),
    [
        (", ports: [{portNumber: {protocol: TCP, port: 5432}}]", 5432, "deny"),
        (", ports: [{portNumber: {protocol: TCP, port: 5432}}]", 5433, "allow"),
        (", ports: [{portNumber: {protocol: UDP, port: 5432}}]", 5432, "allow"),
        (", ports: [{portRange: {protocol: TCP, start: 5000, end: 6000}}]", 6000, "deny"),
        (", ports: [{portRange: {protocol: TCP, start: 5000, end: 6000}}]", 6001, "allow"),
        (", ports: [{namedPort: pg}]", 5432, "deny"),
        (", ports: [{namedPort: pg}]", 80, "allow"),
    ],
)
def test_anp_ports(ports: str, port: int, expected: str) -> None:
    verdict = flow(anp("p", 1, "Deny", ports=ports), DEV, DB, port)
    assert verdict.ingress is not None and verdict.ingress.status == expected


def test_anp_egress_networks_and_nodes() -> None:
    text = """
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: egress}
spec:
  priority: 1
  subject: {namespaces: {matchLabels: {env: prod}}}
  egress:
  - {action: Deny, to: [{networks: [203.0.113.0/24]}]}
  - {action: Allow, to: [{nodes: {matchLabels: {role: control}}}]}
  - {action: Deny, to: [{nodes: {}}]}
"""
    assert side(flow(text, WEB, Peer.external("203.0.113.7")), "egress") == ("deny", "adminnetworkpolicy.egress", 0)
    assert side(flow(text, WEB, Peer.external("198.51.100.7")), "egress") == ("allow", "default-allow", None)
    control = Peer.host("cp-1", "10.9.0.1", {"role": "control"})
    assert side(flow(text, WEB, control), "egress") == ("allow", "adminnetworkpolicy.egress", 1)
    assert side(flow(text, WEB, Peer.host("w-1", "10.9.0.2", {"role": "worker"})), "egress")[0] == "deny"
    unknown_node = flow(text, WEB, Peer.host("w-2", "10.9.0.3"))
    assert unknown_node.egress is not None and unknown_node.egress.status == NOT_EVALUATED
    # A pod never matches a nodes peer.
    assert side(flow(text, WEB, DB), "egress") == ("allow", "default-allow", None)


CNP = """
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {{name: {name}}}
spec:
  tier: {tier}
  priority: {priority}
  subject: {{namespaces: {{matchLabels: {{env: prod}}}}}}
  ingress:
  - name: from-dev
    action: {action}
    from: [{{namespaces: {{matchLabels: {{env: dev}}}}}}]
    protocols:
    - {{tcp: {{destinationPort: {{number: 5432}}}}}}
    - {{udp: {{destinationPort: {{range: {{start: 53, end: 54}}}}}}}}
"""


def test_cluster_network_policy_tiers() -> None:
    admin = CNP.format(name="a", tier="Admin", priority=3, action="Deny")
    baseline = CNP.format(name="b", tier="Baseline", priority=3, action="Accept")
    assert side(flow(admin, DEV, DB, 5432), "ingress") == ("deny", "kube-admin.a", 0)
    assert side(flow(admin, DEV, DB, 53, "UDP"), "ingress") == ("deny", "kube-admin.a", 1)
    assert side(flow(admin, DEV, DB, 55, "UDP"), "ingress") == ("allow", "default-allow", None)
    assert side(flow(baseline + "---" + NP_ALLOW_DEV.replace("env: dev", "env: none"), DEV, DB, 5432),
                "ingress") == ("deny", "data/db-from-dev", -1)
    assert side(flow(baseline, DEV, DB, 5432), "ingress") == ("allow", "kube-baseline.b", 0)


def calico_tier(order: int) -> str:
    return f"""
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {{name: early}}
spec: {{order: {order}}}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: early.allow-dev}}
spec: {{tier: early, selector: app == 'db', ingress: [{{action: Allow, source: {{namespaceSelector: env == 'dev'}}}}]}}
"""


def test_admin_tier_sits_among_calico_tiers_by_order() -> None:
    text = anp("block-dev", 10, "Deny")
    assert side(flow(calico_tier(500) + text, DEV, DB), "ingress") == ("allow", "early.allow-dev", 0)
    assert side(flow(calico_tier(5000) + text, DEV, DB), "ingress") == ("deny", "adminnetworkpolicy.block-dev", 0)


def test_kind_rules_and_warnings() -> None:
    with pytest.raises(PolicySetError, match="needs --cni calico"):
        load(calico_tier(1), cni="kubernetes")
    with pytest.raises(PolicySetError, match="CiliumNetworkPolicy is a Cilium kind"):
        load("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x, namespace: y}")
    with pytest.raises(PolicySetError, match="must be named 'default'"):
        load(BANP_DENY_DEV.replace("name: default", "name: other"))
    with pytest.raises(PolicySetError, match=r"spec.priority: must be a whole number from 0 to 1000, got 1001"):
        load(anp("x", 1001, "Deny"))
    with pytest.raises(PolicySetError, match=r"spec.ingress\[0\].action: must be Allow or Deny"):
        load(BANP_DENY_DEV.replace("action: Deny", "action: Pass"))
    policy_set = load("""
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: a, namespace: b}
---
apiVersion: v1
kind: Service
metadata: {name: s}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
---
apiVersion: v1
kind: Service
metadata: {name: t}
""")
    assert policy_set.warnings == [
        "document 1 (AuthorizationPolicy b/a): kind AuthorizationPolicy (security.istio.io/v1) is not evaluated",
        "not policies, ignored: 1 Deployment, 2 Service",
    ]
