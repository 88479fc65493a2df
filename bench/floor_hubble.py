"""The floor for Hubble: a one-file script that implements the counting contract as the exporter does.

    python bench/floor_hubble.py FILE      # prints the counters, one `family key... value` per line

Typed msgspec decode of the fields the rules read, the drop/verdict pairing, a dict of counters, one
loop, nothing else: no series cap, no self-metrics, no exposition. Any architecture of the exporter
must be at least this fast (bench/run.py prints the ratio). It implements what the exporter counts
today: policy verdicts, policy drop events paired with their DROPPED verdict twin within 50 ms,
event_type-less DROPPED lines read as drop events; timestamps in the `Z` form Hubble writes.
"""

from __future__ import annotations

import re
import sys
from collections import deque
from datetime import date

import msgspec


class Workload(msgspec.Struct, gc=False):
    name: str = ""


class Endpoint(msgspec.Struct, gc=False):
    identity: int = 0
    namespace: str = ""
    labels: list[str] = []
    pod_name: str = ""
    workloads: list[Workload] = []


class Policy(msgspec.Struct, gc=False):
    name: str = ""
    namespace: str = ""
    labels: list[str] = []


class Ports(msgspec.Struct, gc=False):
    source_port: int = 0
    destination_port: int = 0


class ICMP(msgspec.Struct, gc=False):
    type: int = 0


class L4(msgspec.Struct, gc=False):
    TCP: Ports | None = None
    UDP: Ports | None = None
    SCTP: Ports | None = None
    ICMPv4: ICMP | None = None
    ICMPv6: ICMP | None = None


class IP(msgspec.Struct, gc=False):
    source: str = ""
    destination: str = ""


class EventType(msgspec.Struct, gc=False):
    type: int = 0
    sub_type: int = 0


class Flow(msgspec.Struct, gc=False):
    time: str = ""
    verdict: str = ""
    drop_reason: int = 0
    drop_reason_desc: str = ""
    IP: IP | None = None
    l4: L4 | None = None
    source: Endpoint | None = None
    destination: Endpoint | None = None
    node_name: str = ""
    event_type: EventType | None = None
    traffic_direction: str = ""
    is_reply: bool = False
    ingress_allowed_by: list[Policy] = []
    egress_allowed_by: list[Policy] = []
    ingress_denied_by: list[Policy] = []
    egress_denied_by: list[Policy] = []


class Line(msgspec.Struct, gc=False):
    flow: Flow | None = None
    node_name: str = ""
    time: str = ""


FAMILIES = {"FORWARDED": "allowed", "REDIRECTED": "allowed", "DROPPED": "dropped", "AUDIT": "audit"}
DIRECTIONS = {"INGRESS": "ingress", "EGRESS": "egress"}
POLICY_REASONS = {"POLICY_DENIED", "POLICY_DENY", "AUTH_REQUIRED"}
REASON_NAMES = {133: "POLICY_DENIED", 181: "POLICY_DENY", 189: "AUTH_REQUIRED"}
RESERVED = {1: "host", 2: "world", 3: "unmanaged", 4: "health", 5: "init", 6: "remote-node", 7: "kube-apiserver",
            8: "ingress", 9: "world", 10: "world"}
RESERVED_ORDER = ("kube-apiserver", "host", "remote-node", "ingress", "health", "init", "unmanaged", "world",
                  "unknown")
_A = "[bcdfghjklmnpqrstvwxz2456789]"
POD_PATTERNS = [re.compile(p) for p in (rf"^(.+)-{_A}{{6,10}}-{_A}{{5}}$", rf"^(.+)-{_A}{{6,10}}$",
                                        rf"^(.+)-{_A}{{5}}$", r"^(.+)-[0-9]+$")]
NS_LABEL = "k8s:io.kubernetes.pod.namespace="
WINDOW_NS = 50_000_000
EPOCH_DAY = date(1970, 1, 1).toordinal()


def peer(ep: Endpoint | None) -> tuple[str, str]:
    if ep is None:
        ep = Endpoint()
    ns = ep.namespace or next((lb[len(NS_LABEL):] for lb in ep.labels if lb.startswith(NS_LABEL)), "")
    if ns:
        if ep.workloads and ep.workloads[0].name:
            return f"{ns}/{ep.workloads[0].name}", ns
        if ep.pod_name:
            m = next((m for p in POD_PATTERNS if (m := p.match(ep.pod_name))), None)
            return f"{ns}/{m.group(1) if m else ep.pod_name}", ns
        k8s = dict(lb[4:].partition("=")[::2] for lb in ep.labels if lb.startswith("k8s:"))
        return f"{ns}/{k8s.get('app.kubernetes.io/name') or k8s.get('app') or k8s.get('k8s-app') or 'unknown'}", ns
    found = {"world" if lb.startswith(("cidr:", "fqdn:")) else lb[9:].removesuffix("-ipv4").removesuffix("-ipv6")
             for lb in ep.labels if lb.startswith(("reserved:", "cidr:", "fqdn:"))}
    name = next((n for n in RESERVED_ORDER if n in found), "") or (min(found) if found else "")
    return name or RESERVED.get(ep.identity) or ("world" if ep.identity >= 1 << 24 else "unknown"), ""


def policy_names(*lists: list[Policy]) -> str:
    names = set()
    for policies in lists:
        for p in policies:
            if p.name:
                names.add(f"{p.namespace}/{p.name}" if p.namespace else p.name)
                continue
            labels = dict(lb.partition("=")[::2] for lb in p.labels)
            derived = labels.get("reserved:io.cilium.policy.derived-from")
            name, ns = labels.get("k8s:io.cilium.k8s.policy.name"), labels.get("k8s:io.cilium.k8s.policy.namespace")
            if derived:
                names.add("reserved:" + derived)
            elif name:
                names.add(f"{ns}/{name}" if ns else name)
    return ",".join(sorted(names))


def count(lines: list[bytes]) -> dict[str, dict[tuple[str, ...], int]]:
    decode = msgspec.json.Decoder(Line).decode
    counters: dict[str, dict[tuple[str, ...], int]] = {"allowed": {}, "dropped": {}, "audit": {}}
    pending: dict[tuple, deque[int]] = {}
    hours: dict[str, int] = {}
    for line in lines:
        try:
            flow = decode(line).flow
        except msgspec.DecodeError:
            continue
        if flow is None:
            continue
        etype = flow.event_type.type if flow.event_type is not None else 0
        verdict = flow.verdict
        if etype == 5:
            family = FAMILIES.get(verdict)
            if family is None:
                continue
        elif etype == 1 or (etype == 0 and verdict == "DROPPED"):
            family, etype = "dropped", 1
        else:
            continue
        if flow.is_reply:
            continue
        reason = ""
        if family != "allowed":
            number = flow.drop_reason or (flow.event_type.sub_type if etype == 1 and flow.event_type else 0)
            reason = flow.drop_reason_desc or (REASON_NAMES.get(number, str(number)) if number else "")
            if etype == 1 and reason not in POLICY_REASONS:
                continue
        direction = DIRECTIONS.get(flow.traffic_direction, "unknown")
        l4 = flow.l4
        proto, sport, dport = "", 0, 0
        if l4 is not None:
            if l4.TCP is not None:
                proto, sport, dport = "TCP", l4.TCP.source_port, l4.TCP.destination_port
            elif l4.UDP is not None:
                proto, sport, dport = "UDP", l4.UDP.source_port, l4.UDP.destination_port
            elif l4.SCTP is not None:
                proto, sport, dport = "SCTP", l4.SCTP.source_port, l4.SCTP.destination_port
            elif l4.ICMPv4 is not None:
                proto, dport = "ICMPv4", l4.ICMPv4.type
            elif l4.ICMPv6 is not None:
                proto, dport = "ICMPv6", l4.ICMPv6.type
        if family == "dropped":
            ts = flow.time
            t = -1
            if ts:
                h = hours.get(ts[:13])
                if h is None:
                    h = hours[ts[:13]] = ((date(int(ts[:4]), int(ts[5:7]), int(ts[8:10])).toordinal() - EPOCH_DAY)
                                          * 86400 + int(ts[11:13]) * 3600)
                t = ((h + int(ts[14:16]) * 60 + int(ts[17:19])) * 1_000_000_000
                     + (int(ts[20:-1].ljust(9, "0")) if len(ts) > 20 else 0))
            ip = flow.IP
            pkey = (flow.node_name, direction, ip.source if ip else "", ip.destination if ip else "", proto, sport,
                    dport, reason)
            if etype == 1:
                times = pending.get(pkey)
                if times and t >= 0:
                    while times and times[0] < t - WINDOW_NS:
                        times.popleft()
                    if times and times[0] <= t:
                        times.popleft()
                        continue
            elif t >= 0:
                pending.setdefault(pkey, deque()).append(t)
        if etype == 5:
            if family == "allowed":
                ingress, egress = flow.ingress_allowed_by, flow.egress_allowed_by
            else:
                ingress, egress = flow.ingress_denied_by, flow.egress_denied_by
            policy = policy_names(ingress if direction == "ingress" else egress) if direction != "unknown" \
                else policy_names(ingress, egress)
        else:
            policy = ""
        if family == "audit" and not reason:
            reason = "POLICY_DENY" if policy else "POLICY_DENIED"
        if not policy:
            policy = ("default-allow" if family == "allowed" else
                      "default-deny" if reason == "POLICY_DENIED" else "unknown")
        src, src_ns = peer(flow.source)
        dst, dst_ns = peer(flow.destination)
        port = str(dport) if dport and proto in ("TCP", "UDP", "SCTP") else ""
        key: tuple[str, ...] = (policy, direction, src, src_ns, dst, dst_ns, port, proto)
        if family != "allowed":
            key += (reason,)
        store = counters[family]
        store[key] = store.get(key, 0) + 1
    return counters


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        result = count(f.readlines())
    for fam, series in result.items():
        for k, v in series.items():
            print(fam, *k, v)
