"""The floor for Calico: a one-file script that implements the counting contract for `flows.log` records.

    python bench/floor_calico.py FILE      # prints the counters, one `family key... value` per line

Typed msgspec decode of the fields the rules read, the deciding policy from the policy strings (all three
syntaxes), contract naming of both peers, a dict of counters, one loop; memoised where a one-file script
naturally would (a policy string, a pod name pattern). bench/run.py prints the exporter's ratio to it.
"""

from __future__ import annotations

import re
import sys

import msgspec


class Labels(msgspec.Struct, gc=False):
    labels: list[str] = []


class Policies(msgspec.Struct, gc=False):
    enforced_policies: list[str] | None = None
    all_policies: list[str] | None = None


class Record(msgspec.Struct, gc=False):
    source_ip: str | None = None
    source_name: str | None = None
    source_name_aggr: str | None = None
    source_namespace: str | None = None
    source_type: str | None = None
    source_labels: Labels | None = None
    dest_ip: str | None = None
    dest_name: str | None = None
    dest_name_aggr: str | None = None
    dest_namespace: str | None = None
    dest_port: int | None = None
    dest_type: str | None = None
    dest_labels: Labels | None = None
    proto: str | int | None = None
    action: str = ""
    reporter: str | None = None
    policies: Policies | None = None
    packets_in: int | None = None
    packets_out: int | None = None


_A = "[bcdfghjklmnpqrstvwxz2456789]"
POD_PATTERNS = [re.compile(p) for p in (rf"^(.+)-{_A}{{6,10}}-{_A}{{5}}$", rf"^(.+)-{_A}{{6,10}}$",
                                        rf"^(.+)-{_A}{{5}}$", r"^(.+)-[0-9]+$")]
PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP", "icmp": "ICMPv4", "icmpv4": "ICMPv4", "icmp4": "ICMPv4",
             "icmp6": "ICMPv6", "icmpv6": "ICMPv6", "ipv6-icmp": "ICMPv6", "6": "TCP", "17": "UDP", "132": "SCTP",
             "1": "ICMPv4", "58": "ICMPv6"}
KINDS = {"gnp", "np", "knp", "snp", "sgnp", "sknp", "kcnp", "pro", "kanp", "kbanp", "anp", "banp"}
DIRECTIONS = {"dst": "ingress", "src": "egress"}
workloads: dict[str, str] = {}
hits: dict[str, tuple[int, str, str]] = {}


def workload(pod: str) -> str:
    name = workloads.get(pod)
    if name is None:
        m = next((m for p in POD_PATTERNS if (m := p.match(pod))), None)
        name = workloads[pod] = m.group(1) if m else pod
    return name


def hit(text: str) -> tuple[int, str, str]:
    """(order, action, policy label; '' for a profile) of one policy string."""
    found = hits.get(text)
    if found is not None:
        return found
    parts = text.split("|")
    index, tier, field, action = int(parts[0]), parts[1], parts[2], parts[3]
    kind, colon, rest = field.partition(":")
    if colon and kind in KINDS:
        if kind == "pro":
            found = (index, action, "")
        else:
            namespace, _, name = rest.rpartition("/")
            found = (index, action, label(tier, namespace, name.removeprefix("staged:")))
    elif tier == "__PROFILE__" or field.startswith("__PROFILE__."):
        found = (index, action, "")
    else:
        namespace, _, name = field.rpartition("/")
        name = name.removeprefix("staged:")
        for prefix in ("knp.default.", "kanp.", "kbanp."):
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        head, dot, tail = name.partition(".")
        if dot and tail.startswith("staged:"):
            name = f"{head}.{tail[7:]}"
        found = (index, action, label(tier, namespace, name))
    hits[text] = found
    return found


def label(tier: str, namespace: str, name: str) -> str:
    if tier in ("default", ""):
        name = name.removeprefix("default.")
    elif not name.startswith(tier + "."):
        name = f"{tier}.{name}"
    return f"{namespace}/{name}" if namespace else name


def peer(kind: str | None, name: str | None, aggr: str | None, namespace: str | None,
         labels: Labels | None) -> tuple[str, str]:
    ns = "" if namespace in (None, "-") else namespace
    name = "" if name in (None, "-") else name
    aggr = "" if aggr in (None, "-") else aggr
    if aggr and aggr.endswith("*"):
        aggr = aggr[:-1].rstrip("-")
    if kind == "wep":
        if name or aggr:
            w = workload(name or aggr)
        else:
            kv = dict(item.partition("=")[::2] for item in (labels.labels if labels else []))
            w = kv.get("app.kubernetes.io/name") or kv.get("app") or kv.get("k8s-app") or "unknown"
        return (f"{ns}/{w}" if ns else w), ns
    if kind == "hep":
        return "host", ""
    if kind == "net":
        return "world", ""
    if kind == "ns":
        set_name = name or aggr
        return ((f"{ns}/{set_name}" if ns else set_name) if set_name else "unknown"), ""
    return "unknown", ""


def count(lines: list[bytes]) -> dict[str, dict[tuple[str, ...], int]]:
    decode = msgspec.json.Decoder(Record).decode
    counters: dict[str, dict[tuple[str, ...], int]] = {"allowed": {}, "dropped": {}}
    for line in lines:
        try:
            rec = decode(line)
        except msgspec.DecodeError:
            continue
        packets = (rec.packets_in or 0) + (rec.packets_out or 0)
        action = rec.action
        if packets <= 0 or action not in ("allow", "deny"):
            continue
        pol = rec.policies
        strings = (pol.enforced_policies if pol.enforced_policies is not None else pol.all_policies) if pol else None
        policy = ""
        if strings:
            ordered = sorted(map(hit, strings))
            chosen = (next((h for h in ordered if h[1] == "deny"), None) if action == "deny"
                      else next((h for h in reversed(ordered) if h[1] == "allow"), None))
            policy = chosen[2] if chosen else ""
        deny = action == "deny"
        if not policy:
            policy = "default-deny" if deny else "default-allow"
        proto = PROTOCOLS.get(str(rec.proto).lower(), str(rec.proto).upper()) if rec.proto is not None else ""
        port = str(rec.dest_port) if rec.dest_port and proto in ("TCP", "UDP", "SCTP") else ""
        src, src_ns = peer(rec.source_type, rec.source_name, rec.source_name_aggr, rec.source_namespace,
                           rec.source_labels)
        dst, dst_ns = peer(rec.dest_type, rec.dest_name, rec.dest_name_aggr, rec.dest_namespace, rec.dest_labels)
        key: tuple[str, ...] = (policy, DIRECTIONS.get(rec.reporter or "", "unknown"), src, src_ns, dst, dst_ns,
                                port, proto)
        if deny:
            key += ("POLICY_DENIED",)
        store = counters["dropped" if deny else "allowed"]
        store[key] = store.get(key, 0) + packets
    return counters


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        result = count(f.readlines())
    for fam, series in result.items():
        for k, v in series.items():
            print(fam, *k, v)
