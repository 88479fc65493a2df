"""Label values of the contract that do not depend on the input format."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

# The alphabet Kubernetes uses for generated name suffixes (k8s.io/apimachinery rand.String).
_A = "[bcdfghjklmnpqrstvwxz2456789]"
_WORKLOAD_PATTERNS: Final = (
    re.compile(rf"^(.+)-{_A}{{6,10}}-{_A}{{5}}$"),  # Deployment pod: name-<rs hash>-<pod suffix>
    re.compile(rf"^(.+)-{_A}{{6,10}}$"),  # ReplicaSet name, or a CronJob's Job
    re.compile(rf"^(.+)-{_A}{{5}}$"),  # DaemonSet / Job / ReplicaSet pod
    re.compile(r"^(.+)-[0-9]+$"),  # StatefulSet pod
)
WORKLOAD_LABEL_KEYS: Final = ("app.kubernetes.io/name", "app", "k8s-app")

UNKNOWN: Final = "unknown"
WORLD: Final = "world"
HOST: Final = "host"


@lru_cache(maxsize=65536)
def workload_from_pod_name(pod: str) -> str:
    """The workload a pod name was generated from (contract, rule 2)."""
    for pattern in _WORKLOAD_PATTERNS:
        m = pattern.match(pod)
        if m:
            return m.group(1)
    return pod


def workload_from_labels(labels: dict[str, str]) -> str:
    """Rule 3: a pod known only by its labels."""
    for key in WORKLOAD_LABEL_KEYS:
        value = labels.get(key)
        if value:
            return value
    return UNKNOWN


def pod_peer_name(namespace: str, workload: str) -> str:
    return f"{namespace}/{workload}" if namespace else workload


_PROTOCOL_ALIASES: Final = {
    "tcp": "TCP",
    "udp": "UDP",
    "sctp": "SCTP",
    "icmp": "ICMPv4",
    "icmpv4": "ICMPv4",
    "icmp4": "ICMPv4",
    "icmp6": "ICMPv6",
    "icmpv6": "ICMPv6",
    "ipv6-icmp": "ICMPv6",
    # IANA protocol numbers, as Calico writes unnamed protocols
    "6": "TCP",
    "17": "UDP",
    "132": "SCTP",
    "1": "ICMPv4",
    "58": "ICMPv6",
}
PORT_PROTOCOLS: Final = frozenset({"TCP", "UDP", "SCTP"})


@lru_cache(maxsize=256)
def protocol_label(value: str) -> str:
    """`TCP`, `UDP`, `SCTP`, `ICMPv4`, `ICMPv6`; anything else upper-cased as given."""
    return _PROTOCOL_ALIASES.get(value.lower(), value.upper())


def port_label(protocol: str, port: int | None) -> str:
    """Decimal destination port for port-carrying protocols, empty otherwise."""
    if protocol in PORT_PROTOCOLS and port:
        return str(port)
    return ""
