"""Connections → breaks, opens and not-evaluated rows, and their renderings (JSON, Markdown, table).

A break is a connection allowed today and denied by the proposal; an open one denied today and
allowed by the proposal. Rows group connections by (source, destination, destination_port,
protocol) with the contract's label values, split by `side` and `policy` when they were decided
differently; not-evaluated rows split by `reason` instead.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, TextIO

from exporter.naming import port_label
from exporter.whatif.decide import DEFAULT_ALLOW, Deciding, Decision
from exporter.whatif.events import EGRESS, INGRESS
from exporter.whatif.tracking import Connection

BREAKS, OPENS, NOT_EVALUATED = "breaks", "opens", "not_evaluated"
CATEGORIES = (BREAKS, OPENS, NOT_EVALUATED)

# category, source, source ns, destination, destination ns, port, protocol, side or reason, policy
GroupKey = tuple[str, str, str, str, str, str, str, str, str]
_GROUPS_OF_LIMIT = 200_000
_UNSEEN: Any = object()


@dataclass
class Totals:
    connections: int = 0
    unchanged: int = 0
    breaks: int = 0
    opens: int = 0
    not_evaluated: int = 0


def _group_key(conn: Connection, category: str, side: str, policy: str) -> GroupKey:
    return (category, conn.src.name, conn.src.namespace, conn.dst.name, conn.dst.namespace,
            port_label(conn.protocol, conn.port), conn.protocol, side, policy)


class Report:
    def __init__(self, proposed: Deciding, baseline: Deciding | None = None) -> None:
        self.proposed = proposed
        self.baseline = baseline
        self.totals = Totals()
        self.groups: dict[GroupKey, list[int]] = {}
        # the row each (source, destination, port, protocol, recorded verdict) goes to; None: unchanged
        self._groups_of: dict[tuple[Any, ...], GroupKey | None] = {}

    def add(self, conn: Connection) -> None:
        self.totals.connections += conn.count
        key = (conn.src, conn.dst, conn.port, conn.protocol, conn.denied, conn.deny_side)
        group_key = self._groups_of.get(key, _UNSEEN)
        if group_key is _UNSEEN:
            if len(self._groups_of) >= _GROUPS_OF_LIMIT:
                self._groups_of.clear()
            outcome = self._classify(conn)
            group_key = self._groups_of[key] = _group_key(conn, *outcome) if outcome is not None else None
        if group_key is None:
            self.totals.unchanged += conn.count
        else:
            self._add(group_key, conn)

    def _classify(self, conn: Connection) -> tuple[str, str, str] | None:
        """(category, side or reason, policy) of a connection, None when unchanged. It depends only on the
        key `add` caches it by: the same pairs talk all day."""
        proposal = self.proposed.decide(conn.src, conn.dst, conn.port, conn.protocol)
        today: Decision | None = None
        if self.baseline is not None:
            today = self.baseline.decide(conn.src, conn.dst, conn.port, conn.protocol)
            if today.reason:
                return NOT_EVALUATED, today.reason, ""
        if proposal.reason:
            return NOT_EVALUATED, proposal.reason, ""
        allowed_today = today.allowed if today is not None else not conn.denied
        if allowed_today == proposal.allowed:
            return None
        if allowed_today:
            side = EGRESS if proposal.egress is not None and not proposal.egress.allowed else INGRESS
            verdict = proposal.side(side)
            return BREAKS, side, self.proposed.deny_label(verdict) if verdict is not None else ""
        side = self._changed_side(conn, proposal, today)
        verdict = proposal.side(side)
        return OPENS, side, self.proposed.allow_label(verdict) if verdict is not None else DEFAULT_ALLOW

    @staticmethod
    def _changed_side(conn: Connection, proposal: Decision, today: Decision | None) -> str:
        """The end whose decision changed (egress first); from the recorded denial when no baseline."""
        if today is not None:
            for side in (EGRESS, INGRESS):
                before = today.side(side)
                if before is not None and not before.allowed:
                    return side
        if conn.deny_side and proposal.side(conn.deny_side) is not None:
            return conn.deny_side
        return EGRESS if proposal.egress is not None else INGRESS

    def _add(self, key: GroupKey, conn: Connection) -> None:
        category = key[0]
        setattr(self.totals, category, getattr(self.totals, category) + conn.count)
        group = self.groups.get(key)
        if group is None:
            self.groups[key] = [conn.count, conn.first_ns, conn.last_ns]
            return
        group[0] += conn.count
        if conn.first_ns and (not group[1] or conn.first_ns < group[1]):
            group[1] = conn.first_ns
        if conn.last_ns > group[2]:
            group[2] = conn.last_ns

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {c: [] for c in CATEGORIES}
        for key, (count, first, last) in self.groups.items():
            category, src, src_ns, dst, dst_ns, port, protocol, side, policy = key
            row: dict[str, Any] = {
                "source": src,
                "source_namespace": src_ns,
                "destination": dst,
                "destination_namespace": dst_ns,
                "destination_port": port,
                "protocol": protocol,
                "connections": count,
                "first_seen": rfc3339(first),
                "last_seen": rfc3339(last),
            }
            if category == NOT_EVALUATED:
                row["reason"] = side
            else:
                row["side"] = side
                row["policy"] = policy
            out[category].append(row)
        for rows in out.values():
            rows.sort(key=_row_order)
        return out


def _row_order(row: dict[str, Any]) -> tuple[Any, ...]:
    port = row["destination_port"]
    return (-row["connections"], row["source"], row["destination"], int(port) if port else -1, row["protocol"],
            row.get("side", row.get("reason")), row.get("policy", ""))


def rfc3339(ns: int) -> str | None:
    if not ns:
        return None
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


# -- renderings ---------------------------------------------------------------------------------

def write_json(rows: dict[str, list[dict[str, Any]]], out: TextIO) -> None:
    json.dump({c: rows[c] for c in CATEGORIES}, out, indent=2)
    out.write("\n")


def _peer(name: str) -> str:
    return name or "-"


def _port(row: dict[str, Any]) -> str:
    return f"{row['protocol']}/{row['destination_port']}" if row["destination_port"] else row["protocol"]


def _cells(row: dict[str, Any], category: str) -> tuple[str, ...]:
    last = row["last_seen"][:19] + "Z" if row["last_seen"] else "-"  # to the second: a table for people
    decided = (row["reason"],) if category == NOT_EVALUATED else (row["side"], row["policy"] or "-")
    return (_peer(row["source"]), _peer(row["destination"]), _port(row), str(row["connections"]), *decided, last)


_TITLES = {
    BREAKS: "Breaks: allowed today, denied by the proposal",
    OPENS: "Opens: denied today, allowed by the proposal",
    NOT_EVALUATED: "Not evaluated: the flows lack what the decision needs",
}
_HEADERS = {
    BREAKS: ("SOURCE", "DESTINATION", "PORT", "CONNECTIONS", "SIDE", "DENIED BY", "LAST SEEN"),
    OPENS: ("SOURCE", "DESTINATION", "PORT", "CONNECTIONS", "SIDE", "ALLOWED BY", "LAST SEEN"),
    NOT_EVALUATED: ("SOURCE", "DESTINATION", "PORT", "CONNECTIONS", "REASON", "LAST SEEN"),
}


def summary(totals: Totals) -> str:
    return (f"{totals.connections} connections: {totals.breaks} break, {totals.opens} open, "
            f"{totals.not_evaluated} not evaluated, {totals.unchanged} unchanged")


def write_table(rows: dict[str, list[dict[str, Any]]], totals: Totals, out: TextIO) -> None:
    for category in CATEGORIES:
        if not rows[category]:
            continue
        out.write(f"{_TITLES[category]}\n")
        table = [_HEADERS[category], *(_cells(r, category) for r in rows[category])]
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        for line in table:
            out.write("  " + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n")
        out.write("\n")
    out.write(summary(totals) + "\n")


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def write_markdown(rows: dict[str, list[dict[str, Any]]], totals: Totals, out: TextIO) -> None:
    verdict = "**breaks nothing**" if not rows[BREAKS] else f"**breaks {totals.breaks} connections**"
    out.write(f"### NetworkPolicy what-if: {verdict}\n\n{summary(totals)}.\n")
    for category in CATEGORIES:
        if not rows[category]:
            continue
        header = _HEADERS[category]
        out.write(f"\n#### {_TITLES[category]}\n\n")
        out.write("| " + " | ".join(h.capitalize() for h in header) + " |\n")
        out.write("|" + "---|" * len(header) + "\n")
        for row in rows[category]:
            out.write("| " + " | ".join(f"`{_md(c)}`" if i < 3 else _md(c) for i, c in
                                         enumerate(_cells(row, category))) + " |\n")
