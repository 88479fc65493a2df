"""The MODEL file of `netpol-exporter check`: namespaces, pods, policies and expected probes.

```yaml
namespaces: {NAME: {LABEL: VALUE}}            # kubernetes.io/metadata.name is added
pods: [{name, namespace, labels, ip, ports: [{name, port, protocol}], serviceAccount}]
policies: [NetworkPolicy | CNP | CCNP | Calico kinds | ANP ..., ...]   # optional; --policies adds more
probes: [{from: NS/POD | IP | ENTITY, to: ..., port: N | NAME, protocol: TCP, expect: allow | deny}]
# ENTITY: a Cilium reserved identity (host, remote-node, kube-apiserver, health, init, ingress, unmanaged)
reachability:                                 # optional: a matrix over every ordered pod pair
  - {port: 80, protocol: TCP, default: allow,
     rules: [{from: "x/*", to: "y/a", expect: deny}]}   # fnmatch patterns, later rules win
```
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.netpol.attribution import NAMESPACE_NAME_LABEL
from exporter.netpol.cilium import CLUSTER_ENTITIES
from exporter.netpol.errors import InputError, PolicyInvalid
from exporter.netpol.evaluator import ContainerPort, Endpoint, Verdict, evaluate, group_by_namespace
from exporter.netpol.labels import Labels, validate_label_key, validate_label_value
from exporter.netpol.loading import AnyPolicy, Document, child_node, parse_any_policy, read_documents
from exporter.netpol.policy import PROTOCOLS


@dataclass(frozen=True)
class Probe:
    source: str
    destination: str
    port: int | str | None
    protocol: str
    expect: str | None  # "allow" | "deny" | None
    where: str  # "probes[3]" or "reachability[0] x/a -> y/b"


@dataclass
class Cluster:
    """Namespaces, pods and policies: everything a probe is evaluated against."""

    namespaces: dict[str, Labels] = field(default_factory=dict)
    pods: dict[str, Endpoint] = field(default_factory=dict)  # "ns/name" → pod
    policies: list[AnyPolicy] = field(default_factory=list)
    # The tiered engine's set (Calico kinds, AdminNetworkPolicies) when it evaluates instead.
    policy_set: Any = None
    service_accounts: dict[str, str] = field(default_factory=dict)  # "ns/name" → service account

    def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        self.namespaces[name] = Labels({NAMESPACE_NAME_LABEL: name, **(labels or {})})

    def endpoint(self, ref: str) -> Endpoint:
        """`ns/pod`, a pod's IP, an IP outside the cluster, or a Cilium entity (`host`, ...)."""
        if ref in self.pods:
            return self.pods[ref]
        if ref in CLUSTER_ENTITIES:
            return Endpoint(key=ref, namespace=None, entity=ref)
        try:
            ip = ipaddress.ip_address(ref)
        except ValueError:
            raise KeyError(
                f"{ref!r} is neither a pod (namespace/name) of the model, an IP address nor an entity "
                f"({', '.join(sorted(CLUSTER_ENTITIES))})"
            ) from None
        owners = [p for p in self.pods.values() if p.ip == ip]
        if len(owners) > 1:
            raise KeyError(f"{ref} is the IP of several pods ({', '.join(p.key for p in owners)}); name the pod")
        return owners[0] if owners else Endpoint(key=str(ip), namespace=None, ip=ip)

    def resolve_port(self, port: int | str | None, protocol: str, dst: Endpoint) -> int | None:
        if not isinstance(port, str):
            return port
        for cp in dst.ports:
            if cp.name == port and cp.protocol == protocol:
                return cp.port
        raise KeyError(f"{dst.key} has no container port named {port!r} for {protocol}")

    def evaluate(self, src: Endpoint, dst: Endpoint, port: int | None, protocol: str) -> Any:
        """The NetworkPolicy engine's `Verdict`, or a `TieredVerdict` when `policy_set` is set."""
        if self.policy_set is not None:
            from exporter.netpol.tiered_verdict import evaluate_tiered, peer_of

            return evaluate_tiered(self.policy_set, peer_of(src, self.service_accounts.get(src.key)),
                                   peer_of(dst, self.service_accounts.get(dst.key)), port, protocol)
        verdict: Verdict = evaluate(group_by_namespace(self.policies), src, dst, port, protocol)
        return verdict


@dataclass
class Model:
    cluster: Cluster
    probes: list[Probe]
    source: str


def _fail(doc: Document, path: str, message: str) -> InputError:
    return InputError(f"{doc.where(path)}: {message}")


def _mapping(doc: Document, obj: Any, path: str) -> Mapping[str, Any]:
    if obj is None:
        return {}
    if not isinstance(obj, Mapping):
        raise _fail(doc, path, f"expected a mapping, got {type(obj).__name__}")
    return obj


def _list(doc: Document, obj: Any, path: str) -> list[Any]:
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise _fail(doc, path, f"expected a list, got {type(obj).__name__}")
    return obj


def _labels(doc: Document, obj: Any, path: str) -> Labels:
    labels = _mapping(doc, obj, path)
    try:
        for k, v in labels.items():
            validate_label_key(k, f"{path}.{k}")
            validate_label_value(v, f"{path}.{k}")
    except PolicyInvalid as exc:
        raise _fail(doc, exc.path, exc.message) from None
    return Labels(labels)


_PROBE_PROTOCOLS = {p.upper(): p for p in (*PROTOCOLS, "ICMPv4", "ICMPv6")}


def _protocol(doc: Document, value: Any, path: str, icmp: bool = False) -> str:
    protocol = "TCP" if value is None else str(value).upper()
    if protocol not in PROTOCOLS and not (icmp and protocol in _PROBE_PROTOCOLS):
        allowed = "TCP, UDP, SCTP, ICMPv4 or ICMPv6 (port: the ICMP type)" if icmp else "TCP, UDP or SCTP"
        raise _fail(doc, path, f"protocol must be {allowed}, got {value!r}")
    return _PROBE_PROTOCOLS[protocol]


def _port(doc: Document, value: Any, path: str, icmp: bool = False) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _fail(doc, path, f"must be a port number or a port name, got {value!r}")
    if icmp:
        if not isinstance(value, int) or not 0 <= value <= 255:
            raise _fail(doc, path, f"an ICMP probe's port is the ICMP type (0-255), got {value!r}")
        return value
    if isinstance(value, int) and not 1 <= value <= 65535:
        raise _fail(doc, path, f"must be between 1 and 65535, got {value}")
    return value


def _expect(doc: Document, value: Any, path: str) -> str | None:
    if value is None:
        return None
    if value not in ("allow", "deny"):
        raise _fail(doc, path, f"must be allow or deny, got {value!r}")
    return str(value)


def _parse_pod(doc: Document, obj: Any, path: str, cluster: Cluster) -> Endpoint:
    pod = _mapping(doc, obj, path)
    name, namespace = pod.get("name"), pod.get("namespace")
    if not isinstance(name, str) or not name:
        raise _fail(doc, f"{path}.name", "is required")
    if not isinstance(namespace, str) or not namespace:
        raise _fail(doc, f"{path}.namespace", "is required")
    account = pod.get("serviceAccount")
    if account is not None:
        if not isinstance(account, str) or not account:
            raise _fail(doc, f"{path}.serviceAccount", "must be a service account name")
        cluster.service_accounts[f"{namespace}/{name}"] = account
    if namespace not in cluster.namespaces:
        cluster.add_namespace(namespace)
    ip = None
    if pod.get("ip") is not None:
        try:
            ip = ipaddress.ip_address(str(pod["ip"]))
        except ValueError:
            raise _fail(doc, f"{path}.ip", f"invalid IP address {pod['ip']!r}") from None
    ports = []
    for i, raw in enumerate(_list(doc, pod.get("ports"), f"{path}.ports")):
        ppath = f"{path}.ports[{i}]"
        entry = _mapping(doc, raw, ppath)
        number = _port(doc, entry.get("port"), f"{ppath}.port")
        if not isinstance(number, int):
            raise _fail(doc, f"{ppath}.port", "a container port must be a number")
        pname = entry.get("name")
        if pname is not None and not isinstance(pname, str):
            raise _fail(doc, f"{ppath}.name", "must be a string")
        ports.append(ContainerPort(number, _protocol(doc, entry.get("protocol"), f"{ppath}.protocol"), pname))
    return Endpoint(
        key=f"{namespace}/{name}",
        namespace=namespace,
        labels=_labels(doc, pod.get("labels"), f"{path}.labels"),
        namespace_labels=cluster.namespaces[namespace],
        ip=ip,
        ports=tuple(ports),
    )


def _reachability_probes(doc: Document, obj: Any, path: str, cluster: Cluster) -> list[Probe]:
    matrix = _mapping(doc, obj, path)
    port = _port(doc, matrix.get("port"), f"{path}.port")
    protocol = _protocol(doc, matrix.get("protocol"), f"{path}.protocol")
    default = _expect(doc, matrix.get("default", "allow"), f"{path}.default")
    rules = []
    for i, raw in enumerate(_list(doc, matrix.get("rules"), f"{path}.rules")):
        rule = _mapping(doc, raw, f"{path}.rules[{i}]")
        src, dst = rule.get("from", "*"), rule.get("to", "*")
        if not isinstance(src, str) or not isinstance(dst, str):
            raise _fail(doc, f"{path}.rules[{i}]", "from and to must be strings (ns/pod patterns)")
        rules.append((src, dst, _expect(doc, rule.get("expect"), f"{path}.rules[{i}].expect")))
    probes = []
    for src in cluster.pods:
        for dst in cluster.pods:
            expect = default
            for src_pattern, dst_pattern, result in rules:
                if fnmatch.fnmatchcase(src, src_pattern) and fnmatch.fnmatchcase(dst, dst_pattern):
                    expect = result
            if src == dst:
                expect = "allow"  # a pod's traffic to itself is always allowed
            probes.append(Probe(src, dst, port, protocol, expect, f"{path} {src} -> {dst}"))
    return probes


def inline_policy_documents(doc: Document) -> list[Document]:
    """The model's `policies:` entries as documents (for the tiered engine), located in the model file."""
    top = _mapping(doc, doc.obj, "")
    entries = _list(doc, top.get("policies"), "policies")
    seq = child_node(doc.node, "policies")
    return [Document(doc.source, obj, seq.value[i] if isinstance(seq, yaml.SequenceNode) else None,
                     f"policies[{i}]") for i, obj in enumerate(entries)]


def parse_model(doc: Document, extra_policies: list[AnyPolicy] | None = None, policy_set: Any = None) -> Model:
    """`policy_set` (the tiered engine's, holding the model's own policies too): the inline
    `policies:` are not parsed here."""
    top = _mapping(doc, doc.obj, "")
    unknown = set(top) - {"namespaces", "pods", "policies", "probes", "reachability"}
    if unknown:
        raise _fail(doc, "", f"unknown top-level key(s) {sorted(unknown)}")
    cluster = Cluster()
    for name, labels in _mapping(doc, top.get("namespaces"), "namespaces").items():
        cluster.add_namespace(str(name), _labels(doc, labels, f"namespaces.{name}"))
    for i, raw in enumerate(_list(doc, top.get("pods"), "pods")):
        pod = _parse_pod(doc, raw, f"pods[{i}]", cluster)
        if pod.key in cluster.pods:
            raise _fail(doc, f"pods[{i}]", f"duplicate pod {pod.key}")
        cluster.pods[pod.key] = pod
    cluster.policy_set = policy_set
    for i, raw in enumerate([] if policy_set is not None else _list(doc, top.get("policies"), "policies")):
        try:
            cluster.policies.append(parse_any_policy(raw))
        except PolicyInvalid as exc:
            path = f"policies[{i}].{exc.path}" if exc.path else f"policies[{i}]"
            kind = raw.get("kind", "NetworkPolicy") if isinstance(raw, Mapping) else "NetworkPolicy"
            raise _fail(doc, path, f"invalid {kind}: {exc.message}") from None
    cluster.policies.extend(extra_policies or [])
    keys = [f"{p.kind} {p.key}" for p in cluster.policies]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise _fail(doc, "policies", f"duplicate {', '.join(duplicates)}")
    probes: list[Probe] = []
    for i, raw in enumerate(_list(doc, top.get("probes"), "probes")):
        path = f"probes[{i}]"
        entry = _mapping(doc, raw, path)
        src, dst = entry.get("from"), entry.get("to")
        for key, value in (("from", src), ("to", dst)):
            if not isinstance(value, str) or not value:
                raise _fail(doc, f"{path}.{key}", "is required: namespace/pod or an IP address")
        protocol = _protocol(doc, entry.get("protocol"), f"{path}.protocol", icmp=True)
        probes.append(
            Probe(
                str(src),
                str(dst),
                _port(doc, entry.get("port"), f"{path}.port", icmp=protocol.startswith("ICMP")),
                protocol,
                _expect(doc, entry.get("expect"), f"{path}.expect"),
                path,
            )
        )
    for i, raw in enumerate(_list(doc, top.get("reachability"), "reachability")):
        probes.extend(_reachability_probes(doc, raw, f"reachability[{i}]", cluster))
    for probe in probes:  # resolve references now, so bad ones are input errors with a location
        try:
            dst = cluster.endpoint(probe.destination)
            cluster.endpoint(probe.source)
            cluster.resolve_port(probe.port, probe.protocol, dst)
        except KeyError as exc:
            raise _fail(doc, probe.where.split(" ")[0], str(exc.args[0])) from None
    return Model(cluster, probes, doc.source)


def read_model_document(path: str | Path) -> Document:
    docs = read_documents(Path(path))
    if len(docs) != 1:
        raise InputError(f"{path}: a model file holds exactly one YAML document, found {len(docs)}")
    return docs[0]


def load_model(path: str | Path, extra_policies: list[AnyPolicy] | None = None) -> Model:
    return parse_model(read_model_document(path), extra_policies)
