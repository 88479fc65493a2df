"""--web.config.file: validation messages, real TLS handshakes, client certificates, basic auth."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import aiohttp
import bcrypt
import pytest

from exporter.service.webconfig import WebConfigError, load_web_config, parse_web_config
from tests.service.helpers import FIXTURE_LINES, ListSource, make_certs, running_service

PASSWORD = "correct horse battery staple"


def fixture_source(pipeline):  # type: ignore[no-untyped-def]
    return [ListSource("test:fixture", pipeline, FIXTURE_LINES)]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def password_hash() -> str:
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)


def _client_ssl(certs, with_cert: str | None = "good") -> ssl.SSLContext:  # type: ignore[no-untyped-def]
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    if with_cert == "good":
        ctx.load_cert_chain(certs.client_cert, certs.client_key)
    elif with_cert == "other":
        ctx.load_cert_chain(certs.other_client_cert, certs.other_client_key)
    return ctx


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "message"), [
    ({"tls_server_config": {"cert_file": "x.pem"}}, "tls_server_config: key_file (or key) is required"),
    ({"tls_server_config": {"cert_file": "a", "key_file": "b", "client_auth_type": "RequireAndVerifyClientCert"}},
     "needs client_ca_file"),
    ({"tls_server_config": {"cert_file": "a", "key_file": "b", "client_auth_type": "Sometimes"}},
     "tls_server_config.client_auth_type"),
    ({"tls_server_config": {"cert_file": "a", "key_file": "b", "min_version": "TLS14"}},
     "tls_server_config.min_version"),
    ({"tls_server_config": {"cert_file": "a", "key_file": "b", "client_auth_type": "RequireAnyClientCert"}},
     "RequireAnyClientCert (accepting unverified client certificates) is not supported"),
    ({"tls_server_config": {"cert_file": "a", "key_file": "b", "cipher_suites": ["TLS_NOPE"]}},
     "cipher_suites: unknown or unsupported suite(s) TLS_NOPE"),
    ({"basic_auth_users": {"alice": "hunter2"}}, "basic_auth_users: the value for user 'alice' is not a bcrypt hash"),
    ({"basic_auth_user": {}}, "basic_auth_user: unknown key"),
    ({"http_server_config": {"headers": {"X-Frame-Options": "allow"}}}, "X-Frame-Options must be deny or sameorigin"),
    ({"rate_limit": {"interval": "soon", "burst": 1}}, "rate_limit: interval: 'soon' is not a duration"),
])
def test_invalid_web_config_names_the_key(data: dict, message: str) -> None:
    with pytest.raises(WebConfigError) as err:
        parse_web_config(data, "web.yml")
    assert str(err.value).startswith("web.yml: ")
    assert message in str(err.value)
    assert "hunter2" not in str(err.value)  # a plain-text password by mistake is never echoed


def test_missing_cert_file_named(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text("tls_server_config:\n  cert_file: nope.pem\n  key_file: nope-key.pem\n")
    with pytest.raises(WebConfigError, match=r"web.yml: tls_server_config.cert_file: .*nope.pem: no such file"):
        load_web_config(path)


def test_cli_exits_2_on_invalid_web_config(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "web.yml"
    path.write_text("basic_auth_users:\n  alice: plaintext\n")
    proc = subprocess.run(
        [sys.executable, "-m", "exporter", "run", "--source", "hubble-stdin", "--listen", "127.0.0.1:0",
         "--web.config.file", str(path), "--no-kubernetes"],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert "invalid web config" in proc.stderr and "basic_auth_users" in proc.stderr
    assert "plaintext" not in proc.stderr


# -- TLS and auth over real connections ------------------------------------------------------------------


async def test_tls_handshake_serves_metrics(certs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {certs.server_cert}\n  key_file: {certs.server_key}\n"
                    "  min_version: TLS13\n")
    web = load_web_config(path)
    async with running_service(fixture_source, web_config=web) as (_service, url):
        assert url.startswith("https://")
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/metrics", ssl=_client_ssl(certs, None)) as resp:
                assert resp.status == 200
                assert "networkpolicy_allowed_packets_total" in await resp.text()
            # a plain-HTTP request to the TLS port fails
            with pytest.raises(aiohttp.ClientError):
                async with http.get(url.replace("https://", "http://") + "/metrics") as resp:
                    await resp.read()
            # TLS 1.2 is below min_version
            old = _client_ssl(certs, None)
            old.maximum_version = ssl.TLSVersion.TLSv1_2
            with pytest.raises(aiohttp.ClientError):
                async with http.get(url + "/metrics", ssl=old) as resp:
                    await resp.read()


async def test_client_certificate_verification(certs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {certs.server_cert}\n  key_file: {certs.server_key}\n"
                    f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {certs.ca}\n"
                    "  client_allowed_sans: [prometheus.example]\n")
    web = load_web_config(path)
    async with running_service(fixture_source, web_config=web) as (_service, url), aiohttp.ClientSession() as http:
        async with http.get(url + "/metrics", ssl=_client_ssl(certs, "good")) as resp:
            assert resp.status == 200
        # no client certificate: metrics refused, probes still answer
        async with http.get(url + "/metrics", ssl=_client_ssl(certs, None)) as resp:
            assert resp.status == 403
        async with http.get(url + "/healthz", ssl=_client_ssl(certs, None)) as resp:
            assert resp.status == 200
        async with http.get(url + "/readyz", ssl=_client_ssl(certs, None)) as resp:
            assert resp.status == 200
        # a certificate from a CA the server does not trust fails the handshake
        with pytest.raises(aiohttp.ClientError):
            async with http.get(url + "/metrics", ssl=_client_ssl(certs, "other")) as resp:
                await resp.read()


async def test_client_allowed_sans(certs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {certs.server_cert}\n  key_file: {certs.server_key}\n"
                    f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {certs.ca}\n"
                    "  client_allowed_sans: [grafana.example]\n")
    web = load_web_config(path)
    async with running_service(fixture_source, web_config=web) as (_service, url), \
            aiohttp.ClientSession() as http, http.get(url + "/metrics", ssl=_client_ssl(certs, "good")) as resp:
        assert resp.status == 403  # verified, but its SAN prometheus.example is not allowed


async def test_basic_auth(certs, password_hash: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {certs.server_cert}\n  key_file: {certs.server_key}\n"
                    f"basic_auth_users:\n  prometheus: '{password_hash}'\n"
                    "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n")
    web = load_web_config(path)
    tls = _client_ssl(certs, None)
    async with running_service(fixture_source, web_config=web) as (_service, url), aiohttp.ClientSession() as http:
        for auth in ({}, _basic("prometheus", "wrong"), _basic("nobody", PASSWORD), {"Authorization": "Basic !!"}):
            async with http.get(url + "/metrics", ssl=tls, headers=auth) as resp:
                assert resp.status == 401
                assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
        for path_ in ("/metrics", "/", "/api/v1/denied-flows", "/api/v1/sources"):
            async with http.get(url + path_, ssl=tls, headers=_basic("prometheus", PASSWORD)) as resp:
                assert resp.status == 200, path_
        for probe in ("/healthz", "/readyz"):
            async with http.get(url + probe, ssl=tls) as resp:
                assert resp.status == 200


async def test_rate_limit() -> None:
    web = parse_web_config({"rate_limit": {"interval": "10s", "burst": 2}})
    async with running_service(fixture_source, web_config=web) as (_service, url), aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(3):
            async with http.get(url + "/api/v1/sources") as resp:
                statuses.append(resp.status)
        async with http.get(url + "/healthz") as resp:
            assert resp.status == 200
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize(("text", "seconds"), [("0", 0.0), ("1s", 1.0), ("500ms", 0.5), ("1m30s", 90.0),
                                               ("2h", 7200.0)])
def test_parse_duration(text: str, seconds: float) -> None:
    from exporter.service.webconfig import parse_duration

    assert parse_duration(text) == seconds


def test_inline_pem_values(certs) -> None:  # type: ignore[no-untyped-def]
    web = parse_web_config({"tls_server_config": {"cert": certs.server_cert.read_text(),
                                                  "key": certs.server_key.read_text()}})
    assert web.ssl_context is not None and not web.require_client_cert
