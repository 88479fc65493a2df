"""One end of a connection as the NetworkPolicy engine needs it: namespace, labels, address."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from exporter.model import Peer
from exporter.netpol.attribution import NAMESPACE_NAME_LABEL
from exporter.netpol.cilium import NAMESPACE_LABELS_PREFIX, NOT_POD_LABEL_PREFIXES
from exporter.netpol.labels import Labels


@dataclass(frozen=True, slots=True)
class Side:
    """`name`/`namespace` are the contract's label values. A pod has `namespace` set and `labels`
    (None when the flow did not carry them); any other peer has `namespace` "" and maybe `ip`."""

    name: str
    namespace: str
    labels: Labels | None
    namespace_labels: Labels | None
    ip: str
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # a key of the report's and the deciders' caches: hashed once
        object.__setattr__(self, "_hash", hash((self.name, self.namespace, self.labels, self.namespace_labels,
                                                 self.ip)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def is_pod(self) -> bool:
        return bool(self.namespace)


def namespace_labels(namespace: str, labels: dict[str, str] | None = None) -> Labels:
    """The labels known for a namespace; `kubernetes.io/metadata.name` is always there."""
    return Labels({**(labels or {}), NAMESPACE_NAME_LABEL: namespace})


@lru_cache(maxsize=65536)
def side_from_hubble(peer: Peer) -> Side:
    """A Hubble peer (exporter.decoders.hubble_names) with its `k8s:` labels split into pod and namespace labels."""
    if not peer.namespace:
        return Side(peer.name, "", None, None, peer.ip)
    pod: dict[str, str] = {}
    ns: dict[str, str] = {}
    for label in peer.labels:
        if not label.startswith("k8s:"):
            continue
        key, _, value = label[4:].partition("=")
        if key.startswith(NAMESPACE_LABELS_PREFIX):
            ns[key[len(NAMESPACE_LABELS_PREFIX):]] = value
        elif not key.startswith(NOT_POD_LABEL_PREFIXES):
            pod[key] = value
    labels = Labels(pod) if peer.labels else None  # no labels at all: a remote pod known by identity only
    return Side(peer.name, peer.namespace, labels, namespace_labels(peer.namespace, ns), peer.ip)


@lru_cache(maxsize=65536)  # records of a flow repeat their peers every flush interval
def side_from_calico(peer: Peer, labels: tuple[str, ...] | None) -> Side:
    """A Calico/Goldmane peer; `labels` as the record's `k=v` list (None when the record has none).
    Calico records carry no namespace labels: only `kubernetes.io/metadata.name` is known."""
    if not peer.namespace:
        return Side(peer.name, "", None, None, peer.ip)
    pod = Labels(dict(item.partition("=")[::2] for item in labels)) if labels is not None else None
    return Side(peer.name, peer.namespace, pod, namespace_labels(peer.namespace), peer.ip)
