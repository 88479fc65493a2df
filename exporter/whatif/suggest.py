"""Least-privilege NetworkPolicies from observed connections.

Per destination workload an ingress policy, per source workload an egress policy, each allowing
exactly the (peer, protocol, port) combinations observed allowed, so everything else is denied once
they apply. Selectors use the labels every observed pod of a workload carries, minus the ones that
change per pod or rollout; namespaces are selected by `kubernetes.io/metadata.name`; peers outside
the cluster become /32 (/128) ipBlocks, collapsed where adjacent. Connections recorded as denied
are not allowed (they isolate nothing either: their workloads are covered only by what they did).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from exporter.netpol.attribution import NAMESPACE_NAME_LABEL
from exporter.netpol.labels import Labels
from exporter.whatif.events import EGRESS, INGRESS
from exporter.whatif.report import rfc3339
from exporter.whatif.sides import Side
from exporter.whatif.tracking import Connection

# Labels that differ between the pods of one workload or change on every rollout.
UNSTABLE_LABELS = frozenset({
    "pod-template-hash",
    "controller-revision-hash",
    "pod-template-generation",
    "statefulset.kubernetes.io/pod-name",
    "apps.kubernetes.io/pod-index",
    "batch.kubernetes.io/controller-uid",
    "controller-uid",
    "batch.kubernetes.io/job-name",
    "job-name",
    "batch.kubernetes.io/job-completion-index",
})
LINT_IGNORE = "netpol-exporter.io/lint-ignore"
ICMP = ("ICMPv4", "ICMPv6")

WorkloadKey = tuple[str, str]  # (namespace, contract name)
PeerKey = tuple[str, str, str]  # ("pod", namespace, name) | ("ip", address, "")


@dataclass
class Seen:
    connections: int = 0
    first_ns: int = 0
    last_ns: int = 0

    def add(self, conn: Connection) -> None:
        self.connections += conn.count
        if conn.first_ns and (not self.first_ns or conn.first_ns < self.first_ns):
            self.first_ns = conn.first_ns
        self.last_ns = max(self.last_ns, conn.last_ns)

    def merge(self, other: Seen) -> None:
        self.connections += other.connections
        if other.first_ns and (not self.first_ns or other.first_ns < self.first_ns):
            self.first_ns = other.first_ns
        self.last_ns = max(self.last_ns, other.last_ns)


@dataclass
class Workload:
    namespace: str
    name: str
    label_sets: set[Labels] = field(default_factory=set)
    # direction → peer → (protocol, port or None) → what was seen
    rules: dict[str, dict[PeerKey, dict[tuple[str, int | None], Seen]]] = field(
        default_factory=lambda: {INGRESS: {}, EGRESS: {}})
    covered: set[str] = field(default_factory=set)  # directions observed at this workload

    def selector(self) -> dict[str, str]:
        """The stable labels all of its observed pods carry."""
        common: dict[str, str] | None = None
        for labels in self.label_sets:
            stable = {k: v for k, v in labels.items() if k not in UNSTABLE_LABELS}
            common = stable if common is None else {k: v for k, v in common.items() if stable.get(k) == v}
        return dict(sorted((common or {}).items()))


class Suggester:
    def __init__(self) -> None:
        self.workloads: dict[WorkloadKey, Workload] = {}
        self.notes: set[str] = set()
        self.connections = 0

    def _workload(self, side: Side) -> Workload | None:
        if side.labels is None:
            self.notes.add(f"{side.name}: the flows carry no labels for it; no policy selects it")
            return None
        key = (side.namespace, side.name)
        workload = self.workloads.get(key)
        if workload is None:
            workload = self.workloads[key] = Workload(side.namespace, side.name)
        workload.label_sets.add(side.labels)
        return workload

    def _peer(self, side: Side) -> PeerKey | None:
        if side.is_pod:
            return ("pod", side.namespace, side.name) if self._workload(side) is not None else None
        if side.ip:
            return ("ip", side.ip, "")
        self.notes.add(f"{side.name}: the flows carry no address for it; its connections are not allowed")
        return None

    def add(self, conn: Connection) -> None:
        self.connections += conn.count
        src = self._workload(conn.src) if conn.src.is_pod else None
        dst = self._workload(conn.dst) if conn.dst.is_pod else None
        for workload, direction in ((src, EGRESS), (dst, INGRESS)):
            if workload is not None:
                workload.covered.add(direction)
        if conn.denied:
            return
        port = (conn.protocol, conn.port)
        if src is not None:
            peer = self._peer(conn.dst)
            if peer is not None:
                src.rules[EGRESS].setdefault(peer, {}).setdefault(port, Seen()).add(conn)
        if dst is not None:
            peer = self._peer(conn.src)
            if peer is not None:
                dst.rules[INGRESS].setdefault(peer, {}).setdefault(port, Seen()).add(conn)

    # -- output -------------------------------------------------------------------------------

    def policies_yaml(self) -> str:
        """Multi-document YAML: one ingress policy per destination, one egress policy per source."""
        docs: list[str] = []
        for key in sorted(self.workloads):
            workload = self.workloads[key]
            selector = workload.selector()
            if not selector:
                self.notes.add(f"{workload.name}: its pods share no stable label; no policy written for it")
                continue
            for direction in (INGRESS, EGRESS):
                if direction in workload.covered:
                    docs.append(self._policy(workload, selector, direction))
        return "".join(docs)

    def _selector_of(self, peer: PeerKey) -> dict[str, str]:
        return self.workloads[(peer[1], peer[2])].selector()

    def _policy(self, workload: Workload, selector: dict[str, str], direction: str) -> str:
        rules = workload.rules[direction]
        total = sum(seen.connections for ports in rules.values() for seen in ports.values())
        name = f"{workload.name.split('/', 1)[-1]}-{direction}"
        out = [
            "---\n",
            f"# {direction.capitalize()} of {workload.name}: {len(rules)} peer{'' if len(rules) == 1 else 's'}, "
            f"{total} observed connections.\n",
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n",
            f"  name: {_q(name)}\n  namespace: {_q(workload.namespace)}\n",
        ]
        if direction == EGRESS and not _did_dns(rules):
            out.append(f"  annotations:\n    # no DNS lookup was observed from these pods\n    {LINT_IGNORE}: no-dns\n")
        out.append("spec:\n  podSelector:\n" + _match_labels(selector, 4))
        out.append(f"  policyTypes:\n  - {direction.capitalize()}\n")
        body = list(self._rules(workload, direction))
        field_name = "from" if direction == INGRESS else "to"
        if not body:
            out.append(f"  {direction}: []  # nothing to allow: every connection is denied\n")
            return "".join(out)
        out.append(f"  {direction}:\n")
        for comment, peers, ports in body:
            out.extend(f"  # {line}\n" for line in comment)
            out.append(f"  - {field_name}:\n")
            out.extend(peers)
            if ports:
                out.append("    ports:\n")
                out.extend(ports)
        return "".join(out)

    def _rules(self, workload: Workload, direction: str) -> Iterable[tuple[list[str], list[str], list[str]]]:
        """(comment lines, peer entries, port entries) per rule: one per pod peer, one per port set of addresses."""
        rules = workload.rules[direction]
        arrow = "→"
        by_ports: dict[tuple[tuple[str, int | None], ...], list[PeerKey]] = {}
        for peer in sorted(rules):
            if peer[0] == "ip":
                by_ports.setdefault(tuple(sorted(rules[peer], key=_port_order)), []).append(peer)
                continue
            peer_ns, peer_name = peer[1], peer[2]
            peer_selector = self._selector_of(peer)
            if not peer_selector:  # {} would stand for every pod of the namespace: not least privilege
                self.notes.add(f"{peer_name}: its pods share no stable label; its connections with "
                               f"{workload.name} are not allowed")
                continue
            entry = ["    - "]
            if peer_ns != workload.namespace:
                entry.append("namespaceSelector:\n" + _match_labels({NAMESPACE_NAME_LABEL: peer_ns}, 8) + "      ")
            entry.append("podSelector:\n" + _match_labels(peer_selector, 8))
            comment = [f"{peer_name} {arrow} {workload.name}: " if direction == INGRESS else
                       f"{workload.name} {arrow} {peer_name}: "]
            yield self._describe(comment, rules[peer]), ["".join(entry)], _ports(rules[peer])
        for peers in by_ports.values():
            entries = [f"    - ipBlock:\n        cidr: {net}\n" for net in _collapse(p[1] for p in peers)]
            seen: dict[tuple[str, int | None], Seen] = {}
            for peer in peers:
                for port, observed in rules[peer].items():
                    seen.setdefault(port, Seen()).merge(observed)
            addresses = ", ".join(p[1] for p in peers[:5]) + (f" and {len(peers) - 5} more" if len(peers) > 5 else "")
            comment = [f"{addresses} {arrow} {workload.name}: " if direction == INGRESS else
                       f"{workload.name} {arrow} {addresses}: "]
            yield self._describe(comment, seen), entries, _ports(seen)

    @staticmethod
    def _describe(head: list[str], ports: dict[tuple[str, int | None], Seen]) -> list[str]:
        parts = []
        for port in sorted(ports, key=_port_order):
            seen = ports[port]
            parts.append(f"{_port_text(port)} ({seen.connections} connections)")
        first = min((s.first_ns for s in ports.values() if s.first_ns), default=0)
        last = max((s.last_ns for s in ports.values()), default=0)
        lines = [head[0] + ", ".join(parts)]
        if first:
            lines.append(f"  observed {rfc3339(first)} to {rfc3339(last)}")
        if any(p[0] in ICMP for p in ports):
            lines.append("  ICMP was observed: NetworkPolicy cannot name ICMP, so this rule allows every port")
        return lines


def _collapse(addresses: Iterable[str]) -> list[str]:
    """/32 and /128 networks of the addresses, adjacent ones collapsed (IPv4 first)."""
    networks = [ipaddress.ip_network(a) for a in addresses]
    out: list[str] = []
    for version in (4, 6):
        same = [n for n in networks if n.version == version]
        out.extend(str(n) for n in ipaddress.collapse_addresses(same))  # type: ignore[type-var]
    return out


def _port_order(port: tuple[str, int | None]) -> tuple[str, int]:
    return (port[0], port[1] or 0)


def _port_text(port: tuple[str, int | None]) -> str:
    return f"{port[0]}/{port[1]}" if port[1] is not None else port[0]


def _ports(ports: dict[tuple[str, int | None], Seen]) -> list[str]:
    """Port entries; none at all (every port) when ICMP or a port-less protocol was observed."""
    if any(p[1] is None for p in ports):
        return []
    return [f"    - protocol: {proto}\n      port: {number}\n" for proto, number in sorted(ports, key=_port_order)]


def _did_dns(rules: dict[PeerKey, dict[tuple[str, int | None], Seen]]) -> bool:
    return any(("UDP", 53) in ports or ("TCP", 53) in ports for ports in rules.values())


def _q(text: str) -> str:
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _match_labels(labels: dict[str, str], indent: int) -> str:
    pad = " " * indent
    if not labels:
        return f"{pad}{{}}\n"
    return f"{pad}matchLabels:\n" + "".join(f"{pad}  {_q(k)}: {_q(v)}\n" for k, v in labels.items())
