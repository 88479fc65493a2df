"""Events → connections, in bounded memory.

Hubble: a connection is a 5-tuple seen in a non-reply event; the same 5-tuple again within the
connection window of its last event is the same connection (retransmissions, the other
observation points, the other node's view). Replies never count: `is_reply: true`, or, when
`is_reply` is absent, a 5-tuple whose reverse is a live connection. Connections are kept in touch
order and finished once they fall out of the window (or at the end), so memory holds only the
connections of the last window.

Calico/Goldmane: records carry their own count of started connections. A connection reported by
both ends (a `src` and a `dst` record of the same flow whose intervals meet) counts once — from the
`src` record when there is one — and was denied if either record denies it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from exporter.whatif.events import DENIED, EGRESS, INGRESS, REPLY, Event, FiveTuple, Touch, reverse_of
from exporter.whatif.sides import Side

MAX_ACTIVE = 1_000_000  # live connections kept at most (only reached by streams without times)
_SWEEP_NS = 1_000_000_000


@dataclass(slots=True)
class Connection:
    src: Side
    dst: Side
    protocol: str
    port: int | None
    first_ns: int
    last_ns: int
    count: int  # connections this stands for (1 for Hubble)
    denied: bool  # denied as recorded
    deny_side: str  # EGRESS/INGRESS when recorded, else ""


Sink = Callable[[Connection], None]


class HubbleTracker:
    def __init__(self, window_s: float, sink: Sink, max_active: int = MAX_ACTIVE) -> None:
        self.window_ns = int(window_s * 1_000_000_000)
        self.sink = sink
        self.max_active = max_active
        self.active: OrderedDict[FiveTuple, Connection] = OrderedDict()
        self.watermark = 0
        self._next_sweep = 0
        self.replies = 0
        self.connections = 0

    def add(self, ev: Event | Touch) -> None:
        if ev is REPLY:
            self.replies += 1
            return
        if type(ev) is Touch:
            conn = self.active.get(ev.five_tuple)
            if conn is not None:  # else expired since it was read: an event older than the window
                self.touch(ev.five_tuple, conn, ev.time_ns)
            return
        assert isinstance(ev, Event)
        if ev.is_reply:
            self.replies += 1
            return
        key = ev.five_tuple
        assert key is not None
        t = ev.time_ns
        active = self.active
        conn = active.get(key)
        if conn is not None and t and conn.last_ns and t - conn.last_ns > self.window_ns:
            del active[key]
            self.sink(conn)
            conn = None
        if conn is None:
            if ev.is_reply is None:
                reverse = active.get(reverse_of(key))
                if reverse is not None and not (t and reverse.last_ns and t - reverse.last_ns > self.window_ns):
                    self.replies += 1
                    return
            active[key] = Connection(ev.src, ev.dst, ev.protocol, ev.port, t, t, 1, ev.verdict == DENIED, ev.side)
            self.connections += 1
            if t > self.watermark:
                self._advance(t)
            if len(active) > self.max_active:
                self.sink(active.popitem(last=False)[1])
        else:
            self.touch(key, conn, t)
            if ev.verdict == DENIED and not conn.denied:
                conn.denied = True
                conn.deny_side = ev.side

    def touch(self, five: FiveTuple, conn: Connection, t: int) -> None:
        """Another event of the live connection `conn` (`five`), at `t` (0: without a time)."""
        self.active.move_to_end(five)
        if t:
            if not conn.first_ns or t < conn.first_ns:
                conn.first_ns = t
            if t > conn.last_ns:
                conn.last_ns = t
            if t > self.watermark:
                self._advance(t)

    def _advance(self, t: int) -> None:
        """The stream reached `t`: finish the connections idle for longer than the window."""
        self.watermark = t
        if t >= self._next_sweep:  # sweeping once per second of stream time is enough
            self._next_sweep = t + _SWEEP_NS
            self._expire()

    def _expire(self) -> None:
        horizon = self.watermark - self.window_ns
        active = self.active
        while active:
            key, conn = next(iter(active.items()))
            if conn.last_ns >= horizon:
                return
            del active[key]
            self.sink(conn)

    def finish(self) -> None:
        for conn in self.active.values():
            self.sink(conn)
        self.active.clear()


FlowKey = tuple[Side, Side, str, int | None]


@dataclass(slots=True)
class _Slot:
    start_ns: int
    end_ns: int
    src_allowed: int = 0
    src_denied: int = 0
    dst_allowed: int = 0
    dst_denied: int = 0
    has_src: bool = False
    denied_at: str = ""  # where a record denied, even one that started no connection


class CalicoPairing:
    """Pairs the `src` and `dst` records of a flow; `window_s` is how far apart their intervals may be."""

    def __init__(self, window_s: float, sink: Sink) -> None:
        self.window_ns = int(window_s * 1_000_000_000)
        self.sink = sink
        self.slots: OrderedDict[FlowKey, _Slot] = OrderedDict()
        self.watermark = 0

    def add(self, ev: Event) -> None:
        key = (ev.src, ev.dst, ev.protocol, ev.port)
        start, end = ev.time_ns, max(ev.end_ns, ev.time_ns)
        slot = self.slots.get(key)
        if slot is not None and start and slot.end_ns and start - slot.end_ns > self.window_ns:
            del self.slots[key]
            self._emit(key, slot)
            slot = None
        if slot is None:
            slot = self.slots[key] = _Slot(start, end)
        else:
            self.slots.move_to_end(key)
            slot.start_ns = min(slot.start_ns, start) if slot.start_ns and start else slot.start_ns or start
            slot.end_ns = max(slot.end_ns, end)
        denied = ev.verdict == DENIED
        if denied and not slot.denied_at:
            slot.denied_at = ev.side
        if ev.reporter == "src":
            slot.has_src = True
            if denied:
                slot.src_denied += ev.started
            else:
                slot.src_allowed += ev.started
        elif denied:
            slot.dst_denied += ev.started
        else:
            slot.dst_allowed += ev.started
        if start > self.watermark:
            self.watermark = start
            horizon = self.watermark - 2 * self.window_ns
            while self.slots:
                first_key, first = next(iter(self.slots.items()))
                if first.end_ns >= horizon:
                    break
                del self.slots[first_key]
                self._emit(first_key, first)

    def _emit(self, key: FlowKey, slot: _Slot) -> None:
        src, dst, protocol, port = key
        if slot.has_src:
            egress_denied = slot.src_denied
            ingress_denied = min(slot.dst_denied, slot.src_allowed)
            allowed = slot.src_allowed - ingress_denied
        else:
            egress_denied, ingress_denied, allowed = 0, slot.dst_denied, slot.dst_allowed
        parts = [(count, denied, side) for count, denied, side in
                 ((allowed, False, ""), (egress_denied, True, EGRESS), (ingress_denied, True, INGRESS)) if count > 0]
        if not parts:  # records of connections started earlier: the traffic is listed, with no new connection
            parts = [(0, bool(slot.denied_at), slot.denied_at)]
        for count, denied, side in parts:
            self.sink(Connection(src, dst, protocol, port, slot.start_ns, slot.end_ns, count, denied, side))

    def finish(self) -> None:
        for key, slot in self.slots.items():
            self._emit(key, slot)
        self.slots.clear()
