"""Sets of allowed connections (protocol → port intervals) between two endpoints.

Used to compare with tools that list every allowed connection (netpol-analyzer's connlist) and
by `check` for probes without a port.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from exporter.netpol.evaluator import (
    Endpoint,
    rule_matches_peer,
    selects,
)
from exporter.netpol.policy import EGRESS, INGRESS, PROTOCOLS, NetworkPolicy, PolicyPort

Interval = tuple[int, int]
FULL: tuple[Interval, ...] = ((1, 65535),)


def _normalize(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    merged: list[Interval] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _intersect(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out = []
    for alo, ahi in a:
        for blo, bhi in b:
            lo, hi = max(alo, blo), min(ahi, bhi)
            if lo <= hi:
                out.append((lo, hi))
    return _normalize(out)


@dataclass(frozen=True)
class ConnSet:
    """protocol → sorted disjoint port intervals; protocols absent allow nothing."""

    ports: tuple[tuple[str, tuple[Interval, ...]], ...] = ()

    @classmethod
    def of(cls, mapping: Mapping[str, Iterable[Interval]]) -> ConnSet:
        items = ((p, _normalize(iv)) for p, iv in mapping.items())
        return cls(tuple(sorted((p, iv) for p, iv in items if iv)))

    @classmethod
    def all(cls) -> ConnSet:
        return cls.of({p: FULL for p in PROTOCOLS})

    def as_dict(self) -> dict[str, tuple[Interval, ...]]:
        return dict(self.ports)

    def union(self, other: ConnSet) -> ConnSet:
        merged: dict[str, list[Interval]] = {}
        for proto, iv in (*self.ports, *other.ports):
            merged.setdefault(proto, []).extend(iv)
        return ConnSet.of(merged)

    def intersect(self, other: ConnSet) -> ConnSet:
        mine, theirs = self.as_dict(), other.as_dict()
        return ConnSet.of({p: _intersect(mine[p], theirs[p]) for p in mine.keys() & theirs.keys()})

    @property
    def empty(self) -> bool:
        return not self.ports

    def describe(self) -> str:
        """netpol-analyzer's wording: `All Connections`, `TCP 80,UDP 53`, `TCP 1-100`, `No Connections`."""
        if self == ConnSet.all():
            return "All Connections"
        if self.empty:
            return "No Connections"
        parts = []
        for proto, intervals in self.ports:
            text = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in intervals)
            parts.append(proto if intervals == FULL else f"{proto} {text}")
        return ",".join(parts)


def _port_intervals(spec: PolicyPort, dst: Endpoint) -> list[Interval]:
    if spec.port is None:
        return list(FULL)
    if isinstance(spec.port, str):
        return [(cp.port, cp.port) for cp in dst.ports if cp.name == spec.port and cp.protocol == spec.protocol]
    return [(spec.port, spec.end_port or spec.port)]


def direction_connections(policies: Iterable[NetworkPolicy], pod: Endpoint, other: Endpoint, direction: str) -> ConnSet:
    """What one side allows: everything when not isolated, else the union of matching rules."""
    dst = pod if direction == INGRESS else other
    isolated = False
    allowed: dict[str, list[Interval]] = {}
    for policy in policies:
        if not policy.affects(direction) or not selects(policy, pod):
            continue
        isolated = True
        for rule in policy.rules(direction):
            if not rule_matches_peer(rule, policy.namespace, other):
                continue
            if rule.ports is None:
                return ConnSet.all()
            for spec in rule.ports:
                allowed.setdefault(spec.protocol, []).extend(_port_intervals(spec, dst))
    return ConnSet.of(allowed) if isolated else ConnSet.all()


def connections(policies_by_namespace: Mapping[str, list[NetworkPolicy]], src: Endpoint, dst: Endpoint) -> ConnSet:
    """Every protocol/port src may open to dst (self-traffic: everything)."""
    if src.is_pod and src.key == dst.key:
        return ConnSet.all()
    result = ConnSet.all()
    if src.namespace is not None:
        result = result.intersect(direction_connections(policies_by_namespace.get(src.namespace, ()), src, dst, EGRESS))
    if dst.namespace is not None:
        result = result.intersect(
            direction_connections(policies_by_namespace.get(dst.namespace, ()), dst, src, INGRESS)
        )
    return result
