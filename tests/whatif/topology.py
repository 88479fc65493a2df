"""A generated cluster of a few hundred workloads and a recorded window of its traffic (Hubble lines).

Deterministic for a seed. Workloads have several pods (differing `pod-template-hash` or StatefulSet
pod names), call a few others, look up names at CoreDNS or not, talk to internet addresses; some
connections are recorded as traces only, others as policy verdicts, with replies; some are denied.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .flows import COREDNS, Pod, World, hubble

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class Call:
    src: Pod | World
    dst: Pod | World
    port: int
    proto: str
    denied: bool = False


def _suffix(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


def workloads(rng: random.Random, count: int, namespaces: int) -> list[list[Pod]]:
    out: list[list[Pod]] = []
    for i in range(count):
        ns = f"team-{i % namespaces:02d}"
        name = f"svc-{i:03d}"
        stateful = i % 7 == 0
        pods = []
        for j in range(rng.randint(1, 3)):
            if stateful:
                pod, extra = f"{name}-{j}", (f"statefulset.kubernetes.io/pod-name={name}-{j}",)
            else:
                rs = _suffix(rng, 10)
                pod, extra = f"{name}-{rs}-{_suffix(rng, 5)}", (f"pod-template-hash={rs}",)
            ip = f"10.{1 + i // 200}.{i % 200}.{10 + j}"
            labels = (f"app={name}", f"team={ns}", *(("tier=edge",) if i % 10 == 0 else ()), *extra)
            pods.append(Pod(ns, name, pod, ip, labels, f"node-{i % 5}"))
        out.append(pods)
    return out


def calls(rng: random.Random, pods: list[list[Pod]]) -> list[Call]:
    out: list[Call] = []
    internet = [World(f"198.51.100.{n}") for n in range(1, 40)]
    for i, replicas in enumerate(pods):
        for target in rng.sample(range(len(pods)), rng.randint(1, 4)):
            if target != i:
                port = 8000 + target % 50
                out.append(Call(rng.choice(replicas), rng.choice(pods[target]), port, "TCP"))
                out.append(Call(rng.choice(replicas), rng.choice(pods[target]), port, "TCP"))
        if i % 3 == 0:
            out.append(Call(rng.choice(replicas), COREDNS, 53, "UDP"))
        if i % 8 == 0:
            out.append(Call(rng.choice(replicas), rng.choice(internet), 443, "TCP"))
        if i % 10 == 0:  # edge services take internet clients
            out.append(Call(rng.choice(internet), rng.choice(replicas), 443, "TCP"))
        if i % 11 == 0:  # something today's policies deny
            out.append(Call(rng.choice(replicas), rng.choice(rng.choice(pods)), 22, "TCP", denied=True))
    return out


def record(rng: random.Random, calls_: list[Call]) -> list[bytes]:
    """The lines of one window: each call a connection at its own time and source port."""
    lines: list[tuple[float, bytes]] = []

    def add(src: Pod | World, dst: Pod | World, at: float, sport: int, dport: int, proto: str, event: str,
            reply: bool | None = False) -> None:
        lines.append((at, hubble(src, dst, at, sport=sport, dport=dport, proto=proto, event=event, reply=reply)))

    for n, call in enumerate(calls_):
        t = rng.uniform(0, 50)
        sport = 32768 + n
        if call.denied:
            for retry in (0.0, 1.0):
                add(call.src, call.dst, t + retry, sport, call.port, call.proto, "deny-ingress")
            continue
        style = n % 3  # traces only, verdicts only, both
        if style in (1, 2) and isinstance(call.src, Pod):
            add(call.src, call.dst, t, sport, call.port, call.proto, "allow-egress")
        if style in (0, 2):
            add(call.src, call.dst, t + 0.0001, sport, call.port, call.proto, "trace-to")
        if style == 1 and isinstance(call.dst, Pod):
            add(call.src, call.dst, t + 0.0002, sport, call.port, call.proto, "allow-ingress")
        add(call.dst, call.src, t + 0.001, call.port, sport, call.proto, "trace-to", None if n % 2 else True)
    lines.sort(key=lambda item: item[0])
    return [line for _, line in lines]
