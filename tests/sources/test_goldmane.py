"""The Goldmane decoder and the push receiver, with real HTTP POSTs."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from pathlib import Path

import aiohttp
import pytest

from exporter.config import Config
from exporter.decoders.goldmane import decode_line
from exporter.model import DecodeError, Family
from exporter.pipeline import Pipeline
from exporter.sources import make_source
from exporter.sources.goldmane_push import GoldmanePushSource
from exporter.sources.options import GoldmanePushOptions
from tests.sources.certs import write_tls_files
from tests.sources.goldmane_flows import (
    ALLOW,
    CALICO_NP,
    DENIED_BY_END_OF_TIER,
    DENY,
    GNP,
    K8S_NP,
    NETWORK,
    PASS,
    PROFILE,
    SRC,
    goldmane_flow,
    hit,
)
from tests.sources.helpers import Running, total, until


def test_end_of_tier_deny_is_charged_to_its_trigger() -> None:
    rec = decode_line(DENIED_BY_END_OF_TIER)
    assert rec is not None
    assert rec.verdict is Family.DROPPED and rec.policies == ("temporal/temporal-history-policy",)
    assert rec.direction == "ingress" and rec.reason == "POLICY_DENIED" and rec.packets == 5
    assert rec.source.name == "network-policy-test/test-client" and rec.destination.name == "temporal/temporal-history"
    assert rec.protocol == "TCP" and rec.destination_port == "7234" and rec.time_ns == 1764357615 * 10**9


def test_allow_takes_last_allow_hit_and_ignores_pending() -> None:
    line = goldmane_flow(action=ALLOW, reporter=SRC, packets_in=2, packets_out=3, enforced=[
        hit(GNP, "security.baseline", tier="security", action=PASS, index=0),
        hit(CALICO_NP, "default.allow-frontend", "temporal", action=ALLOW, index=1, rule=2),
    ], pending=[hit(CALICO_NP, "staged:deny-all", "temporal", action=DENY)])
    rec = decode_line(line)
    assert rec is not None
    assert rec.verdict is Family.ALLOWED and rec.policies == ("temporal/allow-frontend",)
    assert rec.direction == "egress" and rec.packets == 5 and rec.reason == ""


def test_profile_is_default_allow_and_network_peer_is_world() -> None:
    rec = decode_line(goldmane_flow(action=ALLOW, source_type=NETWORK, source_name="pub", source_namespace="",
                                    enforced=[hit(PROFILE, "kns.temporal", tier="__PROFILE__", action=ALLOW)]))
    assert rec is not None and rec.policies == () and rec.source.name == "world"


def test_tiered_global_policy_keeps_its_tier() -> None:
    rec = decode_line(goldmane_flow(enforced=[hit(GNP, "deny-egress", tier="security", action=DENY)]))
    assert rec is not None and rec.policies == ("security.deny-egress",)


def test_string_enums_of_older_builds_are_accepted() -> None:
    rec = decode_line(goldmane_flow(action="Deny", reporter="dst", source_type="wep", dest_type="wep",
                                    enforced=[hit(K8S_NP, "p", "temporal", action="deny")]))
    assert rec is not None and rec.policies == ("temporal/p",) and rec.direction == "ingress"


def test_pass_and_empty_flows_do_not_count() -> None:
    assert decode_line(goldmane_flow(action=PASS)) is None
    assert decode_line(goldmane_flow(packets_in=0)) is None


@pytest.mark.parametrize("line, field", [
    (b'{"start_time":1}', "$.Key"),
    (b'{"Key":{"source_name":"x"},"packets_in":1}', "$.Key.action"),
    (b'{"Key":{"action":7},"packets_in":1}', "$.Key.action"),
    (b'{"Key":{"action":2,"policies":{"enforced_policies":[{"kind":1,"action":9}]}},"packets_in":1}',
     "enforced_policies[0].action"),
    (b'{"Key":{"action":"deny"},"packets_in":"five"}', ""),
    (b"{not json", ""),
])
def test_malformed_lines_raise_decode_error_naming_the_field(line: bytes, field: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_line(line)
    assert field in str(err.value)


async def push_source(pipeline: Pipeline, **opts: int) -> GoldmanePushSource:
    source = GoldmanePushSource("calico-goldmane-push:127.0.0.1:0", pipeline, "127.0.0.1", 0,
                                GoldmanePushOptions(**opts))
    return source


async def post(source: GoldmanePushSource, body: bytes, content_type: str = "application/x-ndjson",
               **headers: str) -> tuple[int, dict[str, int]]:
    url = f"http://127.0.0.1:{source.bound_port}/flows"
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
            url, data=body, headers={"Content-Type": content_type, **headers}) as resp:
        return resp.status, await resp.json()


async def test_push_batch_is_counted_before_200() -> None:
    pipeline = Pipeline()
    source = await push_source(pipeline)
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        body = b"\n".join([DENIED_BY_END_OF_TIER, goldmane_flow(packets_in=7),
                           goldmane_flow(action=ALLOW, packets_in=4)]) + b"\n"
        status, answer = await post(source, body)
        assert status == 200 and answer == {"lines": 3, "counted": 3, "invalid": 0}
        assert total(pipeline) == 12 and total(pipeline, Family.ALLOWED) == 4  # counted when 200 arrives
        assert source.stats.up and source.status.state == "running"
    text = pipeline.render().decode()
    assert f'netpol_exporter_push_requests_total{{source="{source.spec}",code="200"}} 1' in text
    assert source.status.state == "stopped"


async def test_push_with_invalid_lines_counts_valid_ones_and_answers_200() -> None:
    pipeline = Pipeline()
    source = await push_source(pipeline)
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        body = goldmane_flow(packets_in=2) + b"\n{broken\n" + goldmane_flow(packets_in=3)
        status, answer = await post(source, body)
        assert status == 200 and answer == {"lines": 3, "counted": 2, "invalid": 1}
        assert total(pipeline) == 5 and source.stats.invalid == 1


async def test_unusable_requests_are_rejected_and_count_nothing() -> None:
    pipeline = Pipeline()
    source = await push_source(pipeline, max_body_bytes=4096)
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        line = goldmane_flow(packets_in=2)
        assert (await post(source, line, "image/png"))[0] == 415
        assert (await post(source, b"\x1f\x8b not gzip", **{"Content-Encoding": "gzip"}))[0] == 400
        assert (await post(source, line, **{"Content-Encoding": "br"}))[0] == 415
        assert (await post(source, (line + b"\n") * 100))[0] == 413
        assert total(pipeline) == 0 and source.stats.read == 0
        status, answer = await post(source, gzip.compress(line), **{"Content-Encoding": "gzip"})
        assert status == 200 and answer["counted"] == 1 and total(pipeline) == 2


async def test_concurrent_pushes_are_all_counted() -> None:
    pipeline = Pipeline()
    source = await push_source(pipeline, batch_lines=10)
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        body = b"\n".join(goldmane_flow(packets_in=1, dest_port=1000 + i) for i in range(100))
        results = await asyncio.gather(*(post(source, body) for _ in range(8)))
        assert all(status == 200 for status, _ in results)
        assert total(pipeline) == 800 and source.stats.counted == 800


async def test_port_in_use_fails_clearly() -> None:
    pipeline = Pipeline()
    first = await push_source(pipeline)
    async with Running(first):
        await until(lambda: first.bound_port is not None)
        second = make_source(f"calico-goldmane-push:127.0.0.1:{first.bound_port}", pipeline, Config())
        await asyncio.wait_for(second.run(asyncio.Event()), 5)
        assert second.status.state == "failed" and "cannot listen" in second.status.detail


async def test_push_over_https_with_client_certificates(tmp_path: Path) -> None:
    tls = write_tls_files(tmp_path, "netpol-exporter.test")
    (tmp_path / "server.pem").write_bytes(tls.server.cert)
    (tmp_path / "server-key.pem").write_bytes(tls.server.key)
    pipeline = Pipeline()
    source = GoldmanePushSource(
        "calico-goldmane-push:127.0.0.1:0", pipeline, "127.0.0.1", 0,
        GoldmanePushOptions(tls_cert_file=str(tmp_path / "server.pem"), tls_key_file=str(tmp_path / "server-key.pem"),
                            client_ca_file=str(tls.ca)))
    body = goldmane_flow(packets_in=9)
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        url = f"https://127.0.0.1:{source.bound_port}/"
        trust = ssl.create_default_context(cafile=str(tls.ca))
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientError):  # no client certificate: the handshake fails
                async with session.post(url, data=body, ssl=trust):
                    pass
            trust.load_cert_chain(str(tls.client_cert), str(tls.client_key))
            async with session.post(url, data=body, ssl=trust,
                                    headers={"Content-Type": "application/x-ndjson"}) as resp:
                assert resp.status == 200
    assert total(pipeline) == 9 and source.stats.read == 1


def test_push_tls_files_must_be_readable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot load the push receiver's TLS files"):
        GoldmanePushSource("calico-goldmane-push:127.0.0.1:0", Pipeline(), "127.0.0.1", 0,
                           GoldmanePushOptions(tls_cert_file=str(tmp_path / "no.pem"),
                                               tls_key_file=str(tmp_path / "k")))
    with pytest.raises(ValueError, match="both needed"):
        GoldmanePushSource("calico-goldmane-push:127.0.0.1:0", Pipeline(), "127.0.0.1", 0,
                           GoldmanePushOptions(client_ca_file=str(tmp_path / "ca.pem")))
