"""Shared test helpers: Hubble lines, small real Sources, a live server on a free port, certificates."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.config import Config
from exporter.pipeline import Pipeline
from exporter.service.runtime import Service
from exporter.sources.base import Source


def hubble_line(event_type: int, verdict: str, *, direction: str = "INGRESS", src: str = "client-7d9f8b6c4d-x2k9p",
                dst: str = "server-5f8d6c7b9c-r7wtn", port: int = 8080, sport: int = 40000,
                t: str = "2026-11-28T10:00:00.000000000Z", reason: str = "", policies: Sequence[str] = (),
                node: str = "node-a") -> bytes:
    flow: dict[str, Any] = {
        "time": t, "verdict": verdict,
        "IP": {"source": "10.0.0.1", "destination": "10.0.0.2", "ipVersion": "IPv4"},
        "l4": {"TCP": {"source_port": sport, "destination_port": port}},
        "source": {"namespace": "app", "pod_name": src, "labels": ["k8s:io.kubernetes.pod.namespace=app"]},
        "destination": {"namespace": "db", "pod_name": dst, "labels": ["k8s:io.kubernetes.pod.namespace=db"]},
        "node_name": node, "event_type": {"type": event_type}, "traffic_direction": direction, "is_reply": False,
    }
    if reason:
        flow["drop_reason_desc"] = reason
    if policies:
        flow["ingress_allowed_by" if verdict == "FORWARDED" else "ingress_denied_by"] = [
            {"name": p.split("/")[1], "namespace": p.split("/")[0], "kind": "NetworkPolicy"} for p in policies]
    return json.dumps({"flow": flow, "node_name": node, "time": t}).encode()


# A fixture with known counts: 3 allowed (2 for one series), 1 paired drop (counts once), 1 unpaired drop,
# a trace, a lost_events line and an invalid line.
FIXTURE_LINES: list[bytes] = [
    hubble_line(5, "FORWARDED", policies=["db/allow-app"]),
    hubble_line(5, "FORWARDED", policies=["db/allow-app"], sport=40001, t="2026-11-28T10:00:01Z"),
    hubble_line(5, "FORWARDED", policies=["db/allow-app"], port=9090, t="2026-11-28T10:00:02Z"),
    hubble_line(5, "DROPPED", port=5432, reason="POLICY_DENIED", t="2026-11-28T10:00:03.000Z"),
    hubble_line(1, "DROPPED", port=5432, reason="POLICY_DENIED", t="2026-11-28T10:00:03.001Z"),
    hubble_line(1, "DROPPED", port=6379, reason="POLICY_DENIED", t="2026-11-28T10:00:04Z"),
    hubble_line(4, "FORWARDED", t="2026-11-28T10:00:05Z"),
    b'{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"7"},"node_name":"node-a"}',
    b'{"flow": not json',
]
ALLOWED_SERIES = {
    "policy": "db/allow-app", "direction": "ingress", "source": "app/client", "source_namespace": "app",
    "destination": "db/server", "destination_namespace": "db", "destination_port": "8080", "protocol": "TCP",
}


class ListSource(Source):
    """Ingests a fixed list of lines once, then stays running until stopped."""

    format = "hubble"

    def __init__(self, spec: str, pipeline: Pipeline, lines: Sequence[bytes] = ()) -> None:
        super().__init__(spec, pipeline)
        self.lines = list(lines)
        self.closed = False

    async def run(self, stop: asyncio.Event) -> None:
        self.set_state("running")
        self.pipeline.ingest(self.stats, self.lines, where=self.spec)
        await stop.wait()

    async def close(self) -> None:
        self.closed = True


class GatedSource(Source):
    """Waits (state `waiting`) until `go` is set, then runs."""

    format = "hubble"

    def __init__(self, spec: str, pipeline: Pipeline) -> None:
        super().__init__(spec, pipeline)
        self.go = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        self.set_state("waiting", "for the test")
        await self.go.wait()
        self.set_state("running")
        await stop.wait()


class FlakySource(Source):
    """Raises on its first `failures` runs, then runs."""

    format = "hubble"

    def __init__(self, spec: str, pipeline: Pipeline, failures: int = 1) -> None:
        super().__init__(spec, pipeline)
        self.failures = failures
        self.runs = 0

    async def run(self, stop: asyncio.Event) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise RuntimeError("boom: the input went away")
        self.set_state("running")
        await stop.wait()


@asynccontextmanager
async def running_service(sources_factory: Any = None, *, config: Config | None = None, **kwargs: Any,
                          ) -> AsyncIterator[tuple[Service, str]]:
    """A started Service on 127.0.0.1 (free port) and its base URL; stopped on exit."""
    pipeline = Pipeline(config or Config())
    sources = sources_factory(pipeline) if sources_factory else []
    service = Service(pipeline, sources, listen="127.0.0.1:0", **kwargs)
    await service.start()
    scheme = "https" if kwargs.get("web_config") is not None and kwargs["web_config"].ssl_context else "http"
    try:
        yield service, f"{scheme}://{service.url_host()}"
    finally:
        await asyncio.wait_for(service.stop(), 10)


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# -- certificates (cryptography) -----------------------------------------------------------------------


@dataclass
class CertFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_client_cert: Path  # signed by a CA the server does not trust
    other_client_key: Path


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject_cn: str, key: Any, issuer: Any, issuer_key: Any, *, ca: bool = False,
          sans: Sequence[Any] = ()) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def make_certs(directory: Path) -> CertFiles:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    def write(path: Path, obj: Any) -> Path:
        if hasattr(obj, "private_bytes"):
            path.write_bytes(obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        else:
            path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
        return path

    ca_key, other_ca_key = _key(), _key()
    ca = _cert("test CA", ca_key, None, None, ca=True)
    other_ca = _cert("other CA", other_ca_key, None, None, ca=True)
    server_key, client_key, other_key = _key(), _key(), _key()
    server = _cert("server", server_key, ca.subject, ca_key,
                   sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client = _cert("prometheus", client_key, ca.subject, ca_key, sans=[x509.DNSName("prometheus.example")])
    other = _cert("intruder", other_key, other_ca.subject, other_ca_key, sans=[x509.DNSName("intruder.example")])
    return CertFiles(
        ca=write(directory / "ca.pem", ca), server_cert=write(directory / "server.pem", server),
        server_key=write(directory / "server-key.pem", server_key), client_cert=write(directory / "client.pem", client),
        client_key=write(directory / "client-key.pem", client_key),
        other_client_cert=write(directory / "other.pem", other), other_client_key=write(directory / "other-key.pem",
                                                                                        other_key),
    )
