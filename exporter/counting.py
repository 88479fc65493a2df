"""The contract's counting rules, in one place.

- Hubble policy-verdict events count +1 in the family of their verdict.
- A Hubble drop event with a policy reason is the twin of a DROPPED verdict from the same BPF run:
  it pairs with the earliest still-unpaired DROPPED verdict of the same node, direction, addresses,
  protocol, ports (ICMP: type) and reason at most `pairing_window` before it. A pair counts once
  (through the verdict, counted when it arrived); an unpaired drop event counts +1.
- A DROPPED flow without `event_type` (a field mask dropped it) is a verdict or its drop twin: the first
  counts, a second with the same key within the window is its twin.
- An event without a time counts and never pairs.
- Aggregated lines (the Cilium exporter's `aggregate`) stand for their count; their pairing is
  count-wise per aggregation interval: per key and interval, DROPPED verdicts and drop events together
  count max(verdicts, drops) — whichever order the exporter wrote the groups in (it flushes a Go map).
- L7 records an L7 policy denied count as drops (reason L7_POLICY_DENIED) and never pair.
- Calico records count their packets.
- Sentinels for events that name no policy: `default-allow`, `default-deny`, `unknown`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

from exporter.model import HUBBLE_DROP, HUBBLE_UNTYPED_DROP, HUBBLE_VERDICT, Family, FlowRecord
from exporter.selfmetrics import SourceStats
from exporter.store import SeriesStore

DEFAULT_ALLOW: Final = "default-allow"
DEFAULT_DENY: Final = "default-deny"
UNKNOWN_POLICY: Final = "unknown"
DEFAULT_DENY_REASON: Final = "POLICY_DENIED"
# Unpaired verdicts kept for pairing, at most (a bound on memory when drop events are switched off).
MAX_PENDING: Final = 100_000
# Aggregation groups remembered for count-wise pairing, at most (the state is cleared beyond it).
MAX_AGGREGATE_GROUPS: Final = 100_000
# How far a node's events may arrive out of time order (CPUs' perf rings, Relay's merge) and still pair.
REORDER_SLACK_NS: Final = 2_000_000_000
DEFAULT_AGGREGATION_INTERVAL_NS: Final = 30_000_000_000

_PAIRED_KINDS: Final = (HUBBLE_DROP, HUBBLE_UNTYPED_DROP)
_ALLOWED: Final = Family.ALLOWED
_DROPPED: Final = Family.DROPPED

PairKey = tuple[str, str, str, str, str, int, int, str]
Enricher = Callable[[FlowRecord], FlowRecord]
DeniedHook = Callable[[FlowRecord, str, SourceStats], None]


def _pair_key(record: FlowRecord) -> PairKey:
    return (record.node, record.direction, record.source.ip, record.destination.ip, record.protocol,
            record.source_port, record.port_or_type, record.reason)


class _Group:
    """Count-wise pairing state of one pairing key in one aggregation interval."""

    __slots__ = ("counted", "drops", "verdicts")

    def __init__(self) -> None:
        self.verdicts = 0
        self.drops = 0
        self.counted = 0


class FlowCounter:
    """Applies the counting rules to records and adds to the family stores."""

    def __init__(
        self,
        stores: dict[Family, SeriesStore],
        *,
        pairing_window_ns: int = 50_000_000,
        aggregation_interval_ns: int = DEFAULT_AGGREGATION_INTERVAL_NS,
        enrich: Enricher | None = None,
        on_denied: DeniedHook | None = None,
    ) -> None:
        self.stores = stores
        self.window = pairing_window_ns
        self.interval = aggregation_interval_ns
        self.enrich = enrich
        self.on_denied = on_denied
        # Unpaired DROPPED verdict times per pairing key: one time (the common case) or a list of them,
        # oldest first. Per node, all of them in arrival order and the newest time seen, for pruning
        # (nodes' streams interleave and their clocks differ).
        self._pending: dict[PairKey, int | list[int]] = {}
        self._order: dict[str, deque[tuple[int, PairKey]]] = {}
        self._newest: dict[str, int] = {}
        self._held = 0
        # Count-wise pairing of aggregated lines: per node, per interval, per pairing key.
        self._groups: dict[str, dict[int, dict[PairKey, _Group]]] = {}
        self._group_count = 0

    def count(self, record: FlowRecord, now: float, stats: SourceStats) -> bool:
        """Count one record; False when it adds nothing (a drop event paired with its verdict)."""
        kind = record.kind
        verdict = record.verdict
        packets = record.packets
        if kind in _PAIRED_KINDS or (kind == HUBBLE_VERDICT and verdict is _DROPPED):
            if record.aggregated:
                packets = self._aggregated(record)
                if packets < record.packets:
                    stats.paired += record.packets - packets
                    if not packets:
                        return False
            elif kind == HUBBLE_VERDICT:
                self._remember(record)
            elif self._pair(record):
                stats.paired += 1
                return False
            elif kind == HUBBLE_UNTYPED_DROP:
                self._remember(record)  # the first of the two: its twin may follow
        if self.enrich is not None:
            record = self.enrich(record)
        # the policy label, with the contract's sentinels for events that name no policy
        if record.policies:
            policy = ",".join(record.policies)
        elif verdict is _ALLOWED:
            policy = UNKNOWN_POLICY if record.match_type else DEFAULT_ALLOW
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
        self.stores[verdict].add(key, packets, now)
        if verdict is _DROPPED and self.on_denied is not None:
            self.on_denied(record, policy, stats)
        return True

    # -- one event per line: pairing by time ------------------------------------------------------

    def _remember(self, record: FlowRecord) -> None:
        t = record.time_ns
        if t <= 0:
            return  # no time: it cannot pair
        key = _pair_key(record)
        pending = self._pending
        times = pending.get(key)
        if times is None:
            pending[key] = t
        elif type(times) is int:
            pending[key] = [times, t]
        else:
            times.append(t)  # type: ignore[union-attr]
        node = record.node
        order = self._order.get(node)
        if order is None:
            order = self._order[node] = deque()
        order.append((t, key))
        self._held += 1
        newest = self._newest.get(node)
        if newest is None or t > newest:
            self._newest[node] = newest = t
        self._prune(node, order, newest)

    def _pair(self, record: FlowRecord) -> bool:
        t = record.time_ns
        if t <= 0:
            return False
        key = _pair_key(record)
        times = self._pending.get(key)
        if times is None:
            return False
        earliest = t - self.window
        if type(times) is int:
            if times < earliest:
                del self._pending[key]  # too old for this drop event and for any later one
                return False
            if times <= t:
                del self._pending[key]
                return True
            return False
        assert isinstance(times, list)
        while times and times[0] < earliest:
            times.pop(0)
        paired = bool(times) and times[0] <= t
        if paired:
            times.pop(0)
        if not times:
            del self._pending[key]
        return paired

    def _prune(self, node: str, order: deque[tuple[int, PairKey]], newest: int) -> None:
        """Forget a node's verdicts too old to pair with any later drop event of that node (allowing
        REORDER_SLACK_NS of out-of-order delivery); bound the total."""
        horizon = newest - self.window - REORDER_SLACK_NS
        pending = self._pending
        while order and (order[0][0] < horizon or self._held > MAX_PENDING):
            t, key = order.popleft()
            self._held -= 1
            times = pending.get(key)
            if times is None:
                continue
            if type(times) is int:
                if times == t:
                    del pending[key]
            else:
                assert isinstance(times, list)
                if times and times[0] == t:
                    times.pop(0)
                if not times:
                    del pending[key]
        if not order:
            del self._order[node]
            del self._newest[node]

    # -- aggregated lines: count-wise pairing per interval ------------------------------------------

    def _group(self, record: FlowRecord) -> _Group:
        node = record.node
        interval = record.time_ns // self.interval
        by_interval = self._groups.get(node)
        if by_interval is None:
            by_interval = self._groups[node] = {}
        groups = by_interval.get(interval)
        if groups is None:
            # a new interval of this node: the ones before the previous one cannot receive more lines
            for old in [i for i in by_interval if i < interval - 1]:
                self._group_count -= len(by_interval.pop(old))
            groups = by_interval[interval] = {}
        key = _pair_key(record)
        group = groups.get(key)
        if group is None:
            if self._group_count >= MAX_AGGREGATE_GROUPS:
                self._groups.clear()
                self._group_count = 0
                return self._group(record)
            group = groups[key] = _Group()
            self._group_count += 1
        return group

    def _aggregated(self, record: FlowRecord) -> int:
        """How many of an aggregated line's events count: per key and interval, verdicts and drop events
        together count max(verdicts, drops), whatever the order of the lines."""
        n = record.packets
        if record.time_ns <= 0:
            return n  # no time, no interval: it cannot pair
        group = self._group(record)
        if record.kind == HUBBLE_VERDICT:
            group.verdicts += n
        elif record.kind == HUBBLE_DROP:
            group.drops += n
        else:  # without event_type a verdict group cannot be told from its drop twins' group
            group.drops = max(group.drops, n)
        target = max(group.verdicts, group.drops)
        add = target - group.counted
        group.counted = target
        return add

    @property
    def pending(self) -> int:
        return sum(1 if isinstance(times, int) else len(times) for times in self._pending.values())
