"""`suggest --as calico [--tier NAME]`: the same least-privilege rules as Calico policies.

Per destination workload an ingress policy, per source workload an egress policy
(`projectcalico.org/v3` NetworkPolicy in the workload's namespace, in tier NAME, default `default`),
each allowing exactly what was observed allowed: one rule per peer and protocol, its ports listed;
ICMP as Calico's `ICMP`/`ICMPv6` protocol. Pods are selected with Calico selectors on the stable
labels; other namespaces by `projectcalico.org/name`; addresses outside the cluster as `nets`. In a
tier other than `default` the policy names carry the tier prefix and a `Tier` document comes first
(order 100, defaultAction Deny: what the policies do not allow is denied at the end of the tier,
for the workloads they select; all other traffic skips the tier).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from exporter.whatif.events import EGRESS, INGRESS
from exporter.whatif.suggest import PeerKey, Seen, Suggester, Workload, _collapse, _port_order

DEFAULT_TIER = "default"
SUGGESTED_TIER_ORDER = 100
_PROTOCOLS = {"ICMPv4": "ICMP"}


def _q(text: str) -> str:
    return json.dumps(text)


def selector_text(labels: dict[str, str]) -> str:
    """`k == 'v' && ...` (label values never hold a quote: Kubernetes allows [A-Za-z0-9_.-])."""
    return " && ".join(f"{key} == '{value}'" for key, value in sorted(labels.items()))


def calico_policies_yaml(suggester: Suggester, tier: str = DEFAULT_TIER) -> str:
    docs: list[str] = []
    for key in sorted(suggester.workloads):
        workload = suggester.workloads[key]
        selector = workload.selector()
        if not selector:
            suggester.notes.add(f"{workload.name}: its pods share no stable label; no policy written for it")
            continue
        for direction in (INGRESS, EGRESS):
            if direction in workload.covered:
                docs.append(_policy(suggester, workload, selector, direction, tier))
    if docs and tier != DEFAULT_TIER:
        docs.insert(0, f"---\n# The tier of the policies below (leave this document out if it exists already).\n"
                       f"apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: {_q(tier)}\n"
                       f"spec:\n  order: {SUGGESTED_TIER_ORDER}\n  defaultAction: Deny\n")
    return "".join(docs)


def _policy(suggester: Suggester, workload: Workload, selector: dict[str, str], direction: str, tier: str) -> str:
    rules = workload.rules[direction]
    total = sum(seen.connections for ports in rules.values() for seen in ports.values())
    name = f"{workload.name.split('/', 1)[-1]}-{direction}"
    if tier != DEFAULT_TIER:
        name = f"{tier}.{name}"
    out = [
        "---\n",
        f"# {direction.capitalize()} of {workload.name}: {len(rules)} peer{'' if len(rules) == 1 else 's'}, "
        f"{total} observed connections.\n",
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n",
        f"  name: {_q(name)}\n  namespace: {_q(workload.namespace)}\n",
        "spec:\n",
        f"  tier: {_q(tier)}\n",
        f"  selector: {_q(selector_text(selector))}\n",
        f"  types:\n  - {direction.capitalize()}\n",
    ]
    body = list(_rules(suggester, workload, direction))
    if not body:
        out.append(f"  {direction}: []  # nothing to allow: every connection is denied\n")
        return "".join(out)
    out.append(f"  {direction}:\n")
    for comment, rule in body:
        out.extend(f"  # {line}\n" for line in comment)
        out.append(rule)
    return "".join(out)


def _rules(suggester: Suggester, workload: Workload, direction: str) -> Iterable[tuple[list[str], str]]:
    """(comment lines, rule text) per peer and protocol; addresses with the same ports share rules."""
    rules = workload.rules[direction]
    peer_field = "source" if direction == INGRESS else "destination"
    by_ports: dict[tuple[tuple[str, int | None], ...], list[PeerKey]] = {}
    for peer in sorted(rules):
        if peer[0] == "ip":
            by_ports.setdefault(tuple(sorted(rules[peer], key=_port_order)), []).append(peer)
            continue
        peer_ns, peer_name = peer[1], peer[2]
        peer_selector = suggester.workloads[(peer_ns, peer_name)].selector()
        if not peer_selector:
            suggester.notes.add(f"{peer_name}: its pods share no stable label; its connections with "
                                f"{workload.name} are not allowed")
            continue
        match = [f"selector: {_q(selector_text(peer_selector))}"]
        if peer_ns != workload.namespace:
            match.append(f"namespaceSelector: {_q(selector_text({'projectcalico.org/name': peer_ns}))}")
        head = f"{peer_name} → {workload.name}: " if direction == INGRESS else f"{workload.name} → {peer_name}: "
        comment = Suggester._describe([head], rules[peer])
        for i, rule in enumerate(_protocol_rules(rules[peer], peer_field, match)):
            yield (comment if i == 0 else []), rule
    for peers in by_ports.values():
        nets = _collapse(p[1] for p in peers)
        seen: dict[tuple[str, int | None], Seen] = {}
        for peer in peers:
            for port, observed in rules[peer].items():
                seen.setdefault(port, Seen()).merge(observed)
        addresses = ", ".join(p[1] for p in peers[:5]) + (f" and {len(peers) - 5} more" if len(peers) > 5 else "")
        head = f"{addresses} → {workload.name}: " if direction == INGRESS else f"{workload.name} → {addresses}: "
        comment = Suggester._describe([head], seen)
        match = ["nets: [" + ", ".join(_q(n) for n in nets) + "]"]
        for i, rule in enumerate(_protocol_rules(seen, peer_field, match)):
            yield (comment if i == 0 else []), rule


def _protocol_rules(ports: dict[tuple[str, int | None], Seen], peer_field: str, match: list[str]) -> list[str]:
    """One Allow rule per protocol; the peer under `source`/`destination`, the ports under `destination`."""
    by_protocol: dict[str, list[int | None]] = {}
    for protocol, number in sorted(ports, key=_port_order):
        by_protocol.setdefault(protocol, []).append(number)
    out = []
    for protocol, numbers in by_protocol.items():
        lines = ["  - action: Allow\n", f"    protocol: {_PROTOCOLS.get(protocol, protocol)}\n",
                 f"    {peer_field}:\n", *(f"      {m}\n" for m in match)]
        port_list = [n for n in numbers if n is not None]
        if port_list and None not in numbers:
            if peer_field == "source":
                lines.append("    destination:\n")
            lines.append("      ports: [" + ", ".join(str(n) for n in port_list) + "]\n")
        out.append("".join(lines))
    return out
