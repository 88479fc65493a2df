"""The few fields of Kubernetes objects the enrichment reads, decoded straight from the API's JSON.

msgspec skips every other field while decoding, so a 10k-pod list never materializes full objects.
NetworkPolicies are the exception: the policy engine parses them from the API's camelCase dict.
"""

from __future__ import annotations

from typing import Any

import msgspec


class OwnerReference(msgspec.Struct, gc=False):
    kind: str = ""
    name: str = ""
    controller: bool = False


class ManagedField(msgspec.Struct, gc=False):
    time: str = ""


class ObjectMeta(msgspec.Struct, rename="camel", gc=False):
    name: str = ""
    namespace: str = ""
    resource_version: str = ""
    generation: int = 0
    creation_timestamp: str = ""
    labels: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None


class PodIP(msgspec.Struct, gc=False):
    ip: str = ""


class PodSpec(msgspec.Struct, rename="camel", gc=False):
    host_network: bool = False


class PodStatus(msgspec.Struct, rename="camel", gc=False):
    phase: str = ""
    pod_ip: str = msgspec.field(default="", name="podIP")
    pod_ips: list[PodIP] | None = msgspec.field(default=None, name="podIPs")


class Pod(msgspec.Struct, gc=False):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodSpec = msgspec.field(default_factory=PodSpec)
    status: PodStatus = msgspec.field(default_factory=PodStatus)


class MetaOnly(msgspec.Struct, gc=False):
    """ReplicaSets and Namespaces: only metadata matters (owner, labels)."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


class ListMeta(msgspec.Struct, gc=False):
    resource_version: str = msgspec.field(default="", name="resourceVersion")
    continue_: str = msgspec.field(default="", name="continue")


class Status(msgspec.Struct, gc=False):
    """The API's error object (HTTP error bodies and watch ERROR events)."""

    code: int = 0
    reason: str = ""
    message: str = ""


class WatchEvent(msgspec.Struct, gc=False):
    type: str
    object: msgspec.Raw = msgspec.Raw(b"null")


class ObjectList(msgspec.Struct, gc=False):
    metadata: ListMeta = msgspec.field(default_factory=ListMeta)
    items: msgspec.Raw = msgspec.Raw(b"[]")


decode_event = msgspec.json.Decoder(WatchEvent).decode
decode_list = msgspec.json.Decoder(ObjectList).decode
decode_status = msgspec.json.Decoder(Status).decode
decode_meta = msgspec.json.Decoder(MetaOnly).decode
decode_any: Any = msgspec.json.Decoder().decode
