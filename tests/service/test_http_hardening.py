"""The HTTP endpoint's protections protect: rate limits per authenticated user, bounded bcrypt work,
quiet malformed requests, idle/header timeouts, and a /readyz that tells anonymous probes only what
they need (real HTTP on loopback)."""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
import time
from pathlib import Path

import aiohttp
import bcrypt
import pytest

from exporter.service import http as service_http
from exporter.service.auth import BasicAuth
from exporter.service.webconfig import load_web_config, parse_web_config
from tests.service.helpers import FIXTURE_LINES, GatedSource, ListSource, make_certs, running_service

PASSWORD = "correct horse battery staple"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def fixture_source(pipeline):  # type: ignore[no-untyped-def]
    return [ListSource("test:fixture", pipeline, FIXTURE_LINES)]


def web_config(**extra: object):  # type: ignore[no-untyped-def]
    return parse_web_config({"basic_auth_users": {"prometheus": HASH, "grafana": HASH}, **extra})


def auth_of(service) -> BasicAuth:  # type: ignore[no-untyped-def]
    assert service._runner is not None
    auth = service._runner.app[service_http.AUTH_KEY]
    assert isinstance(auth, BasicAuth)
    return auth


async def test_rate_limit_applies_after_authentication_per_user() -> None:
    web = web_config(rate_limit={"interval": "10s", "burst": 2})
    async with running_service(fixture_source, web_config=web) as (_service, url), aiohttp.ClientSession() as http:
        for _ in range(20):  # unauthenticated clients cannot use up Prometheus' budget
            async with http.get(url + "/metrics") as resp:
                assert resp.status == 401
        statuses = []
        for _ in range(3):
            async with http.get(url + "/metrics", headers=basic("prometheus", PASSWORD)) as resp:
                statuses.append(resp.status)
        assert statuses == [200, 200, 429]
        async with http.get(url + "/metrics", headers=basic("grafana", PASSWORD)) as resp:
            assert resp.status == 200  # another user has its own budget


async def test_wrong_password_floods_cost_bounded_bcrypt_and_long_passwords_get_401() -> None:
    async with running_service(fixture_source, web_config=web_config()) as (service, url), \
            aiohttp.ClientSession() as http:
        auth = auth_of(service)

        async def get(headers: dict[str, str]) -> int:
            async with http.get(url + "/metrics", headers=headers) as resp:
                return resp.status

        statuses = await asyncio.gather(*(get(basic("prometheus", "wrong")) for _ in range(20)))
        assert set(statuses) == {401} and auth.hashes == 1  # a repeated failure is cached
        assert await get(basic("prometheus", "x" * 100)) == 401  # over bcrypt's 72 bytes: not a 500
        statuses = await asyncio.gather(*(get(basic("prometheus", f"guess{i}")) for i in range(50)))
        assert set(statuses) <= {401, 429} and 429 in statuses  # beyond the queue: refused without hashing
        assert auth.hashes <= 2 + 32 + 1
        assert await get(basic("prometheus", PASSWORD)) == 200


async def test_malformed_requests_log_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    async with running_service(fixture_source) as (service, _url):
        host, port = service.addresses[0]
        with caplog.at_level(logging.DEBUG):
            for _ in range(5):
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
                await writer.drain()
                assert b" 400 Bad Request" in (await asyncio.wait_for(reader.read(), 5)).split(b"\r\n")[0]
                writer.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("aiohttp")]
    assert any("Error handling request" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)


async def test_connections_without_a_request_header_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_http, "IDLE_TIMEOUT_SECONDS", 0.3)
    async with running_service(fixture_source) as (service, _url):
        host, port = service.addresses[0]
        silent_reader, silent = await asyncio.open_connection(host, port)
        partial_reader, partial = await asyncio.open_connection(host, port)
        partial.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never completes
        await partial.drain()
        started = time.monotonic()
        assert await asyncio.wait_for(silent_reader.read(), 5) == b""
        assert await asyncio.wait_for(partial_reader.read(), 5) == b""
        assert time.monotonic() - started < 3
        silent.close()
        partial.close()


async def test_readyz_shows_details_only_to_valid_credentials() -> None:
    def sources(pipeline):  # type: ignore[no-untyped-def]
        return [ListSource("test:fixture", pipeline, FIXTURE_LINES),
                GatedSource("hubble-file:/var/secret/layout/events.log", pipeline)]

    async with running_service(sources, web_config=web_config()) as (service, url), \
            aiohttp.ClientSession() as http:
        await asyncio.sleep(0.1)
        async with http.get(url + "/readyz") as resp:
            assert resp.status == 503
            anonymous = await resp.text()
        assert "/var/secret" not in anonymous and "for the test" not in anonymous
        assert await resp.json() == {"ready": False, "not_ready": ["source 2 (hubble-file) is waiting"]}
        async with http.get(url + "/readyz", headers=basic("prometheus", "wrong")) as resp:
            assert "/var/secret" not in await resp.text()
        async with http.get(url + "/readyz", headers=basic("prometheus", PASSWORD)) as resp:
            body = await resp.json()
        assert resp.status == 503
        assert body["sources"]["hubble-file:/var/secret/layout/events.log"] == "waiting"
        service.sources[1].go.set()  # type: ignore[attr-defined]
        await asyncio.sleep(0.1)
        async with http.get(url + "/readyz") as resp:
            assert resp.status == 200 and await resp.json() == {"ready": True, "not_ready": []}


async def test_readyz_details_need_the_client_certificate_under_mtls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    web = load_web_config_text(tmp_path, f"tls_server_config:\n  cert_file: {certs.server_cert}\n"
                               f"  key_file: {certs.server_key}\n  client_auth_type: RequireAndVerifyClientCert\n"
                               f"  client_ca_file: {certs.ca}\n")
    anonymous_tls = ssl.create_default_context(cafile=str(certs.ca))
    client_tls = ssl.create_default_context(cafile=str(certs.ca))
    client_tls.load_cert_chain(certs.client_cert, certs.client_key)
    async with running_service(fixture_source, web_config=web) as (_service, url), aiohttp.ClientSession() as http:
        async with http.get(url + "/readyz", ssl=anonymous_tls) as resp:
            assert resp.status == 200 and await resp.json() == {"ready": True, "not_ready": []}
        async with http.get(url + "/readyz", ssl=client_tls) as resp:
            assert (await resp.json())["sources"] == {"test:fixture": "running"}


def load_web_config_text(directory: Path, text: str):  # type: ignore[no-untyped-def]
    path = directory / "web.yml"
    path.write_text(text)
    return load_web_config(path)
