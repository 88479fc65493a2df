"""A synthetic but realistic minute of Hubble exporter-file lines for the seed's Temporal cluster.

The topology and policies are those of the seed guide (`network-policies-guide.md`): default-deny
namespaces `temporal`, `temporal-workers` and `temporal-monitoring`, per-service policies, the
`databases` and `ingress-nginx` policies, and the guide's `network-policy-test/test-client` pod that
tries what the policies forbid. What each connection produces follows Cilium's datapath:

- an allowed new connection: a FORWARDED policy verdict (type 5) on each isolated side naming the
  policies that allowed it (`egress_allowed_by` / `ingress_allowed_by`) plus trace events (type 4);
- a denied one: a DROPPED verdict and its drop-event twin (type 1, sub_type 133) ~1 ms later on the
  enforcing node, for the SYN and each retransmission (1 s, then 2 s later); no policy is named
  (Cilium names none for a default deny), so the exporter reports `policy="default-deny"`;
- rarely a `lost_events` line.

`schedule(loop_seconds, seed)` gives one loop as (offset seconds, line builder) pairs; a builder
turns an absolute time into the JSON line, so each replay of the loop carries current timestamps.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

CLUSTER = "temporal-prod"
NODES = ("temporal-prod/worker-a", "temporal-prod/worker-b", "temporal-prod/worker-c")
LOOP_SECONDS = 60.0
POLICY_DENIED = 133
POLICY_DENY = 181  # a deny rule matched
# Linux SYN retransmission: 1 s after the first SYN, then 2 s after that.
RETRANSMIT_AFTER = (1.0, 3.0)

LineBuilder = Callable[[int], bytes]  # time in ns since the epoch → one JSON line


@dataclass(frozen=True)
class Pod:
    namespace: str
    workload: str
    pod_name: str
    ip: str
    node: str
    identity: int
    labels: tuple[str, ...]
    kind: str = "Deployment"

    def endpoint(self, endpoint_id: int) -> dict[str, Any]:
        return {
            "ID": endpoint_id,
            "identity": self.identity,
            "cluster_name": CLUSTER,
            "namespace": self.namespace,
            "labels": [
                *self.labels,
                f"k8s:io.cilium.k8s.namespace.labels.name={self.namespace}",
                f"k8s:io.cilium.k8s.policy.cluster={CLUSTER}",
                f"k8s:io.cilium.k8s.policy.serviceaccount={self.workload}",
                f"k8s:io.kubernetes.pod.namespace={self.namespace}",
            ],
            "pod_name": self.pod_name,
            "workloads": [{"name": self.workload, "kind": self.kind}],
        }


@dataclass(frozen=True)
class External:
    ip: str

    def endpoint(self, _endpoint_id: int) -> dict[str, Any]:
        return {"identity": 2, "labels": ["reserved:world"]}


Peer = Pod | External


def _pod(namespace: str, workload: str, suffix: str, ip: str, node: int, identity: int, *labels: str,
         kind: str = "Deployment") -> Pod:
    k8s_labels = tuple(f"k8s:{label}" for label in labels)
    return Pod(namespace, workload, f"{workload}-{suffix}", ip, NODES[node], identity, k8s_labels, kind)


# Pod-name suffixes use the alphabet Kubernetes uses for generated names.
FRONTEND = _pod("temporal", "temporal-frontend", "6c9d7f8b5d-x2k9p", "10.0.1.21", 0, 21001,
                "app=temporal-frontend", "app.kubernetes.io/part-of=temporal")
HISTORY = _pod("temporal", "temporal-history", "7b5c9d6f4b-m4qzt", "10.0.2.34", 1, 21002,
               "app=temporal-history", "app.kubernetes.io/part-of=temporal")
MATCHING = _pod("temporal", "temporal-matching", "5f8d6c7b9c-r7wtn", "10.0.3.17", 2, 21003,
                "app=temporal-matching", "app.kubernetes.io/part-of=temporal")
WORKER = _pod("temporal", "temporal-worker", "84c6b5d9f7-h5vjl", "10.0.1.45", 0, 21004,
              "app=temporal-worker", "app.kubernetes.io/part-of=temporal")
APP_WORKER = _pod("temporal-workers", "application-worker", "6d7f9c8b4d-q8zbx", "10.0.2.61", 1, 22001,
                  "app=application-worker", "component=temporal-worker")
PAYMENT_WORKER = _pod("temporal-workers", "payment-worker", "7c4b8d9f6c-t2nwd", "10.0.3.52", 2, 22002,
                      "app=payment-worker", "component=temporal-worker")
PROMETHEUS = _pod("temporal-monitoring", "prometheus", "0", "10.0.3.80", 2, 23001, "app=prometheus",
                  kind="StatefulSet")
GRAFANA = _pod("temporal-monitoring", "grafana", "5b9c6d8f7d-w6kxz", "10.0.1.88", 0, 23002, "app=grafana")
JAEGER = _pod("temporal-monitoring", "jaeger", "68d5f7c9b8-n9lcv", "10.0.2.90", 1, 23003, "app=jaeger")
POSTGRESQL = _pod("databases", "postgresql", "0", "10.0.2.120", 1, 24001, "app=postgresql", kind="StatefulSet")
ELASTICSEARCH = _pod("databases", "elasticsearch", "0", "10.0.3.121", 2, 24002, "app=elasticsearch",
                     kind="StatefulSet")
INGRESS_NGINX = _pod("ingress-nginx", "ingress-nginx-controller", "7d6b9c5f8d-z4rqs", "10.0.1.10", 0, 25001,
                     "app.kubernetes.io/name=ingress-nginx")
COREDNS = _pod("kube-system", "coredns", "5d78c9869d-k7mpl", "10.0.0.10", 0, 26001, "k8s-app=kube-dns")
TEST_CLIENT = Pod("network-policy-test", "test-client", "test-client", "10.0.2.200", NODES[1], 27001,
                  ("k8s:app=test-client",), kind="Pod")
INTERNET_CLIENT = External("203.0.113.57")
PAYMENT_API = External("198.51.100.20")
GRAFANA_PLUGINS = External("192.0.2.44")
PUBLIC_DNS = External("8.8.8.8")
# `sandbox`: egress locked down by Cilium policies (exporter/data/demo-policies/sandbox-cilium.yaml)
BUILD_RUNNER = _pod("sandbox", "build-runner", "6f8d9c7b5d-r2v9x", "10.0.3.140", 2, 28001, "app=build-runner",
                    "io.cilium.k8s.namespace.labels.egress=locked")
REGISTRY = External("192.0.2.80")
UPSTREAM_MIRROR = External("198.51.100.77")
CLOUD_METADATA = External("169.254.169.254")

# Namespaces with a default-deny policy (their pods get policy verdicts on both directions).
ISOLATED_NAMESPACES = frozenset({"temporal", "temporal-workers", "temporal-monitoring", "databases", "ingress-nginx",
                                 "sandbox"})
CCNP_DERIVED: Final = "CiliumClusterwideNetworkPolicy"
CNP_DERIVED: Final = "CiliumNetworkPolicy"


def _policy(namespace: str, name: str, kind: str = "NetworkPolicy") -> dict[str, Any]:
    """A policy as Hubble names it; a CCNP (namespace "") carries no namespace label."""
    return {
        "name": name,
        "namespace": namespace,
        "labels": [
            f"k8s:io.cilium.k8s.policy.derived-from={kind}",
            f"k8s:io.cilium.k8s.policy.name={name}",
            *([f"k8s:io.cilium.k8s.policy.namespace={namespace}"] if namespace else []),
            f"k8s:io.cilium.k8s.policy.uid={uuid.uuid5(uuid.NAMESPACE_DNS, f'{namespace}.{name}')}",
        ],
        "revision": "17",
        "kind": kind,
    }


@dataclass(frozen=True)
class Scenario:
    """One kind of connection and how often it happens (per minute, at speed 1)."""

    src: Peer
    dst: Peer
    port: int
    per_minute: float
    egress_allowed_by: tuple[tuple[str, str], ...] = ()  # (namespace, name)
    ingress_allowed_by: tuple[tuple[str, str], ...] = ()
    denied_at: str = ""  # "", "egress" or "ingress"
    protocol: str = "TCP"
    description: str = ""
    deny_reason: str = "POLICY_DENIED"  # or POLICY_DENY: a deny rule (Hubble < 1.15 names no policy)
    egress_kind: str = "NetworkPolicy"  # what the egress policies are (Hubble's derived-from)


def _ns_policies(namespace: str, *names: str) -> tuple[tuple[str, str], ...]:
    return tuple((namespace, name) for name in names)


_FRONTEND_IN = _ns_policies("temporal", "temporal-frontend-policy")
_HISTORY_IN = _ns_policies("temporal", "temporal-history-policy")
_MATCHING_IN = _ns_policies("temporal", "temporal-matching-policy")
_WORKER_IN = _ns_policies("temporal", "temporal-worker-policy")
_APP_WORKERS = _ns_policies("temporal-workers", "temporal-application-workers-policy")
_PAYMENT = _ns_policies("temporal-workers", "payment-worker-policy", "temporal-application-workers-policy")
_PROM = _ns_policies("temporal-monitoring", "prometheus-policy")
_GRAFANA = _ns_policies("temporal-monitoring", "grafana-policy")
_POSTGRES = _ns_policies("databases", "postgresql-policy")
_ES = _ns_policies("databases", "elasticsearch-policy")
_INGRESS = _ns_policies("ingress-nginx", "ingress-controller-policy")


def _dns(pod: Pod, per_minute: float) -> Scenario:
    return Scenario(pod, COREDNS, 53, per_minute, _ns_policies(pod.namespace, "allow-dns-access"),
                    protocol="UDP", description="DNS lookup")


SCENARIOS: tuple[Scenario, ...] = (
    # Temporal services talking to each other and to their databases
    Scenario(FRONTEND, HISTORY, 7234, 40, _FRONTEND_IN, _HISTORY_IN),
    Scenario(FRONTEND, HISTORY, 7235, 30, _FRONTEND_IN, _HISTORY_IN),
    Scenario(FRONTEND, MATCHING, 7235, 30, _FRONTEND_IN, _MATCHING_IN),
    Scenario(MATCHING, HISTORY, 7235, 20, _MATCHING_IN, _HISTORY_IN),
    Scenario(WORKER, FRONTEND, 7233, 12, _WORKER_IN, _FRONTEND_IN),
    Scenario(HISTORY, POSTGRESQL, 5432, 30, _HISTORY_IN, _POSTGRES),
    Scenario(MATCHING, POSTGRESQL, 5432, 12, _MATCHING_IN, _POSTGRES),
    Scenario(WORKER, POSTGRESQL, 5432, 4, _WORKER_IN, _POSTGRES),
    Scenario(HISTORY, ELASTICSEARCH, 9200, 12, _HISTORY_IN, _ES),
    # application workers polling the frontend, calling out
    Scenario(APP_WORKER, FRONTEND, 7233, 30, _APP_WORKERS, _FRONTEND_IN),
    Scenario(PAYMENT_WORKER, FRONTEND, 7233, 20, _PAYMENT, _FRONTEND_IN),
    Scenario(PAYMENT_WORKER, PAYMENT_API, 443, 8, _PAYMENT),
    # monitoring: 15 s scrapes, dashboards
    *(Scenario(PROMETHEUS, target, 9090, 4, _PROM, policies) for target, policies in (
        (FRONTEND, _FRONTEND_IN), (HISTORY, _HISTORY_IN), (MATCHING, _MATCHING_IN), (WORKER, _WORKER_IN),
        (APP_WORKER, _APP_WORKERS), (PAYMENT_WORKER, _PAYMENT))),
    Scenario(GRAFANA, PROMETHEUS, 9090, 12, _GRAFANA, _PROM),
    # the way in
    Scenario(INTERNET_CLIENT, INGRESS_NGINX, 443, 40, (), _INGRESS),
    Scenario(INGRESS_NGINX, FRONTEND, 7233, 25, _INGRESS, _FRONTEND_IN),
    Scenario(INGRESS_NGINX, GRAFANA, 3000, 4, _INGRESS, _GRAFANA),
    # DNS from the isolated namespaces that allow it
    *(_dns(pod, rate) for pod, rate in (
        (FRONTEND, 6), (HISTORY, 6), (MATCHING, 4), (WORKER, 2), (APP_WORKER, 4), (PAYMENT_WORKER, 4),
        (PROMETHEUS, 4), (GRAFANA, 2), (JAEGER, 2))),
    # what the policies deny
    Scenario(TEST_CLIENT, FRONTEND, 7233, 3, (), _FRONTEND_IN, description="seed test 1: allowed"),
    Scenario(TEST_CLIENT, HISTORY, 7235, 3, denied_at="ingress", description="seed test 2: history is internal"),
    Scenario(TEST_CLIENT, PUBLIC_DNS, 53, 3, protocol="UDP", description="seed test 4: DNS (no policy applies)"),
    Scenario(TEST_CLIENT, POSTGRESQL, 5432, 3, denied_at="ingress", description="seed test 5: database isolated"),
    Scenario(PAYMENT_WORKER, POSTGRESQL, 5432, 2, _PAYMENT, denied_at="ingress",
             description="payment worker reaching the shared database (only payments-db is allowed)"),
    Scenario(JAEGER, ELASTICSEARCH, 9200, 4, denied_at="egress",
             description="no policy lets jaeger out of the default-deny temporal-monitoring namespace"),
    Scenario(APP_WORKER, HISTORY, 7235, 1, denied_at="egress", description="worker bypassing the frontend"),
    Scenario(GRAFANA, GRAFANA_PLUGINS, 80, 1, denied_at="egress", description="plugin update over plain HTTP"),
    Scenario(INGRESS_NGINX, COREDNS, 53, 2, denied_at="egress", protocol="UDP",
             description="ingress-controller-policy allows no DNS"),
    # the sandbox: Cilium policies (a CCNP locks egress down, a CNP opens the registry)
    Scenario(BUILD_RUNNER, COREDNS, 53, 4, (("", "sandbox-egress-lockdown"),), protocol="UDP",
             egress_kind=CCNP_DERIVED, description="DNS from the locked-down sandbox (cluster entity)"),
    Scenario(BUILD_RUNNER, REGISTRY, 443, 3, (("sandbox", "build-runner-registry"),), egress_kind=CNP_DERIVED,
             description="build runner pulling from its registry (CNP toCIDR)"),
    Scenario(BUILD_RUNNER, UPSTREAM_MIRROR, 443, 2, denied_at="egress",
             description="build runner reaching the internet: the CCNP egress lockdown"),
    Scenario(BUILD_RUNNER, CLOUD_METADATA, 80, 1, denied_at="egress", deny_reason="POLICY_DENY",
             description="cloud metadata: the CCNP's egressDeny"),
)


def _ns_time(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def _is_isolated(peer: Peer) -> bool:
    return isinstance(peer, Pod) and peer.namespace in ISOLATED_NAMESPACES


class _Connection:
    """Builds the lines of one connection attempt; endpoint IDs and ports are fixed per attempt."""

    def __init__(self, scenario: Scenario, source_port: int, rng: random.Random) -> None:
        self.s = scenario
        self.sport = source_port
        self.src_ep = scenario.src.endpoint(rng.randint(100, 3999))
        self.dst_ep = scenario.dst.endpoint(rng.randint(100, 3999))
        self.uuid_seed = rng.getrandbits(64)
        self._n = 0

    def _flow(self, t_ns: int, node: str, event_type: dict[str, int], verdict: str, direction: str | None,
              **extra: Any) -> bytes:
        s = self.s
        self._n += 1
        l4_ports = {"source_port": self.sport, "destination_port": s.port}
        if s.protocol == "TCP":
            l4: dict[str, Any] = {"TCP": {**l4_ports, "flags": {"SYN": True}}}
            summary = "TCP Flags: SYN"
        else:
            l4 = {"UDP": l4_ports}
            summary = "UDP"
        flow: dict[str, Any] = {
            "time": _ns_time(t_ns),
            "uuid": str(uuid.UUID(int=(self.uuid_seed << 64) | (t_ns & 0xFFFFFFFFFFFF) << 8 | self._n & 0xFF)),
            "verdict": verdict,
            "IP": {"source": s.src.ip, "destination": s.dst.ip, "ipVersion": "IPv4"},
            "l4": l4,
            "source": self.src_ep,
            "destination": self.dst_ep,
            "Type": "L3_L4",
            "node_name": node,
            "event_type": event_type,
            "is_reply": False,
            "Summary": summary,
            **extra,
        }
        if direction:
            flow["traffic_direction"] = direction
        return json.dumps({"flow": flow, "node_name": node, "time": flow["time"]},
                          separators=(",", ":")).encode()

    def allowed_verdict(self, side: str) -> LineBuilder:
        s = self.s
        node = s.src.node if side == "egress" and isinstance(s.src, Pod) else getattr(s.dst, "node", NODES[0])
        key = f"{side}_allowed_by"
        policies = [_policy(ns, name, s.egress_kind if side == "egress" else "NetworkPolicy")
                    for ns, name in (s.egress_allowed_by if side == "egress" else s.ingress_allowed_by)]
        return lambda t: self._flow(t, node, {"type": 5}, "FORWARDED", side.upper(), policy_match_type=3,
                                    **{key: policies})

    def trace(self, side: str) -> LineBuilder:
        s = self.s
        if side == "egress":
            node = s.src.node if isinstance(s.src, Pod) else NODES[0]
            return lambda t: self._flow(t, node, {"type": 4, "sub_type": 5}, "FORWARDED", "EGRESS",
                                        trace_observation_point="FROM_ENDPOINT")
        node = s.dst.node if isinstance(s.dst, Pod) else NODES[0]
        return lambda t: self._flow(t, node, {"type": 4, "sub_type": 0}, "FORWARDED", "INGRESS",
                                    trace_observation_point="TO_ENDPOINT")

    def denied(self, side: str) -> tuple[LineBuilder, LineBuilder]:
        s = self.s
        peer = s.src if side == "egress" else s.dst
        node = peer.node if isinstance(peer, Pod) else NODES[0]
        code = POLICY_DENY if s.deny_reason == "POLICY_DENY" else POLICY_DENIED
        drop = {"drop_reason": code, "drop_reason_desc": s.deny_reason}
        def verdict(t: int) -> bytes:
            return self._flow(t, node, {"type": 5}, "DROPPED", side.upper(), policy_match_type=0, **drop)

        def event(t: int) -> bytes:
            return self._flow(t, node, {"type": 1, "sub_type": code}, "DROPPED", side.upper(), **drop)

        return verdict, event


def _connection_events(scenario: Scenario, start: float, rng: random.Random) -> list[tuple[float, LineBuilder]]:
    conn = _Connection(scenario, rng.randint(32768, 60999), rng)
    out: list[tuple[float, LineBuilder]] = []
    t = start
    if _is_isolated(scenario.src) and scenario.denied_at != "egress":
        out.append((t, conn.allowed_verdict("egress")))
        t += 0.00002
    if scenario.denied_at == "egress":
        verdict, event = conn.denied("egress")
        for retry in (0.0, *RETRANSMIT_AFTER[: rng.randint(0, 2)]) if scenario.protocol == "TCP" else (0.0,):
            out.append((t + retry, verdict))
            out.append((t + retry + 0.001, event))
        return out
    if isinstance(scenario.src, Pod):
        out.append((t, conn.trace("egress")))
    t += rng.uniform(0.0002, 0.0015)  # across the wire
    if scenario.denied_at == "ingress":
        verdict, event = conn.denied("ingress")
        for retry in (0.0, *RETRANSMIT_AFTER[: rng.randint(0, 2)]):
            out.append((t + retry, verdict))
            out.append((t + retry + 0.001, event))
        return out
    if _is_isolated(scenario.dst):
        out.append((t, conn.allowed_verdict("ingress")))
        t += 0.00002
    if isinstance(scenario.dst, Pod):
        out.append((t, conn.trace("ingress")))
    return out


def _lost_events(node: str, count: int) -> LineBuilder:
    def build(t: int) -> bytes:
        line = {"lost_events": {"source": "PERF_EVENT_RING_BUFFER", "num_events_lost": str(count),
                                "cpu": {"cpu": 1}}, "node_name": node, "time": _ns_time(t)}
        return json.dumps(line, separators=(",", ":")).encode()

    return build


def schedule(loop_seconds: float = LOOP_SECONDS, seed: int = 20261128) -> list[tuple[float, LineBuilder]]:
    """One loop of traffic, sorted by offset (seconds from the loop's start)."""
    rng = random.Random(seed)
    # leave room at the end for retransmissions so a loop never spills into the next
    window = max(loop_seconds - 4.0, loop_seconds * 0.5)
    events: list[tuple[float, LineBuilder]] = []
    for scenario in SCENARIOS:
        n = max(1, round(scenario.per_minute * loop_seconds / 60.0))
        for _ in range(n):
            events.extend(_connection_events(scenario, rng.uniform(0.0, window), rng))
    events.append((rng.uniform(0.0, window), _lost_events(NODES[rng.randrange(len(NODES))], rng.randint(1, 4))))
    events.sort(key=lambda e: e[0])
    return events
