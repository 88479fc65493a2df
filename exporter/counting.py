"""The contract's counting rules, in one place.

- Hubble policy-verdict events count +1 in the family of their verdict.
- A Hubble drop event with a policy reason is the twin of a DROPPED verdict from the same BPF run:
  it pairs with the earliest still-unpaired DROPPED verdict of the same node, direction, addresses,
  protocol, ports (ICMP: type) and reason at most `pairing_window` before it. A pair counts once
  (through the verdict, counted when it arrived); an unpaired drop event counts +1.
- Calico records count their packets.
- Sentinels for events that name no policy: `default-allow`, `default-deny`, `unknown`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

from exporter.model import HUBBLE_DROP, HUBBLE_VERDICT, Family, FlowRecord
from exporter.selfmetrics import SourceStats
from exporter.store import SeriesStore

DEFAULT_ALLOW: Final = "default-allow"
DEFAULT_DENY: Final = "default-deny"
UNKNOWN_POLICY: Final = "unknown"
DEFAULT_DENY_REASON: Final = "POLICY_DENIED"
# Unpaired verdicts kept for pairing, at most (a bound on memory when drop events are switched off).
MAX_PENDING: Final = 100_000
# How far a node's events may arrive out of time order (CPUs' perf rings, Relay's merge) and still pair.
REORDER_SLACK_NS: Final = 2_000_000_000

_ALLOWED: Final = Family.ALLOWED
_DROPPED: Final = Family.DROPPED

PairKey = tuple[str, str, str, str, str, int, int, str]
Enricher = Callable[[FlowRecord], FlowRecord]
DeniedHook = Callable[[FlowRecord, str, SourceStats], None]


def _pair_key(record: FlowRecord) -> PairKey:
    return (record.node, record.direction, record.source.ip, record.destination.ip, record.protocol,
            record.source_port, record.port_or_type, record.reason)


class FlowCounter:
    """Applies the counting rules to records and adds to the family stores."""

    def __init__(
        self,
        stores: dict[Family, SeriesStore],
        *,
        pairing_window_ns: int = 50_000_000,
        enrich: Enricher | None = None,
        on_denied: DeniedHook | None = None,
    ) -> None:
        self.stores = stores
        self.window = pairing_window_ns
        self.enrich = enrich
        self.on_denied = on_denied
        # Unpaired DROPPED verdict times per pairing key; per node, all of them in arrival order and
        # the newest time seen, for pruning (nodes' streams interleave and their clocks differ).
        self._pending: dict[PairKey, deque[int]] = {}
        self._order: dict[str, deque[tuple[int, PairKey]]] = {}
        self._newest: dict[str, int] = {}
        self._held = 0

    def count(self, record: FlowRecord, now: float, stats: SourceStats) -> bool:
        """Count one record; False when it adds nothing (a drop event paired with its verdict)."""
        kind = record.kind
        verdict = record.verdict
        if kind == HUBBLE_DROP and self._pair(record):
            stats.paired += 1
            return False
        if kind == HUBBLE_VERDICT and verdict is _DROPPED:
            self._remember(record)
        if self.enrich is not None:
            record = self.enrich(record)
        # the policy label, with the contract's sentinels for events that name no policy
        if record.policies:
            policy = ",".join(record.policies)
        elif verdict is _ALLOWED:
            policy = DEFAULT_ALLOW
        elif record.reason == DEFAULT_DENY_REASON:
            policy = DEFAULT_DENY
        else:
            policy = UNKNOWN_POLICY
        src, dst = record.source, record.destination
        if verdict is _ALLOWED:
            key: tuple[str, ...] = (policy, record.direction, src.name, src.namespace, dst.name, dst.namespace,
                                    record.destination_port, record.protocol)
        else:
            key = (policy, record.direction, src.name, src.namespace, dst.name, dst.namespace,
                   record.destination_port, record.protocol, record.reason)
        self.stores[verdict].add(key, record.packets, now)
        if verdict is _DROPPED and self.on_denied is not None:
            self.on_denied(record, policy, stats)
        return True

    def _remember(self, record: FlowRecord) -> None:
        key = _pair_key(record)
        t = record.time_ns
        times = self._pending.get(key)
        if times is None:
            times = self._pending[key] = deque()
        times.append(t)
        node = record.node
        order = self._order.get(node)
        if order is None:
            order = self._order[node] = deque()
        order.append((t, key))
        self._held += 1
        if t > self._newest.get(node, 0):
            self._newest[node] = t
        self._prune(node, order)

    def _pair(self, record: FlowRecord) -> bool:
        times = self._pending.get(_pair_key(record))
        if not times:
            return False
        t = record.time_ns
        earliest = t - self.window
        while times and times[0] < earliest:
            times.popleft()  # too old for this drop event and for any later one
        if times and times[0] <= t:
            times.popleft()
            return True
        return False

    def _prune(self, node: str, order: deque[tuple[int, PairKey]]) -> None:
        """Forget a node's verdicts too old to pair with any later drop event of that node (allowing
        REORDER_SLACK_NS of out-of-order delivery); bound the total."""
        horizon = self._newest[node] - self.window - REORDER_SLACK_NS
        pending = self._pending
        while order and (order[0][0] < horizon or self._held > MAX_PENDING):
            t, key = order.popleft()
            self._held -= 1
            times = pending.get(key)
            if times is not None:
                if times and times[0] == t:
                    times.popleft()
                if not times:
                    del pending[key]

    @property
    def pending(self) -> int:
        return sum(len(times) for times in self._pending.values())
