"""`--web.config.file`: the Prometheus exporter-toolkit web configuration (TLS, basic auth, headers).

Format: https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md.
Differences from the Go toolkit (each rejected with a clear message rather than silently weakened):
`client_auth_type` RequestClientCert and RequireAnyClientCert (Python's ssl cannot accept a client
certificate without verifying it) and `curve_preferences`. The file is read once at start.
"""

from __future__ import annotations

import re
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from exporter.yamlfile import load_yaml_mapping

CLIENT_AUTH_TYPES = ("NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven",
                     "RequireAndVerifyClientCert")
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's crypto/tls names of the TLS ≤ 1.2 suites it offers → OpenSSL names.
_GO_CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
_BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


class WebConfigError(Exception):
    """An invalid web configuration; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TLSServerConfig(_Strict):
    cert: str | None = None
    key: str | None = Field(None, repr=False)
    client_ca: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_auth_type: Literal[
        "NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven",
        "RequireAndVerifyClientCert",
    ] = "NoClientCert"
    client_ca_file: str | None = None
    client_allowed_sans: list[str] = Field(default_factory=list)
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS13"
    cipher_suites: list[str] = Field(default_factory=list)
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> TLSServerConfig:
        if self.cert and self.cert_file:
            raise ValueError("cert and cert_file are exclusive")
        if self.key and self.key_file:
            raise ValueError("key and key_file are exclusive")
        if not (self.cert or self.cert_file):
            raise ValueError("cert_file (or cert) is required")
        if not (self.key or self.key_file):
            raise ValueError("key_file (or key) is required")
        if self.client_ca and self.client_ca_file:
            raise ValueError("client_ca and client_ca_file are exclusive")
        has_ca = bool(self.client_ca or self.client_ca_file)
        if self.client_auth_type in ("RequestClientCert", "RequireAnyClientCert"):
            raise ValueError(f"client_auth_type {self.client_auth_type} (accepting unverified client "
                             "certificates) is not supported: use RequireAndVerifyClientCert with client_ca_file")
        if self.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert") and not has_ca:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file (or client_ca)")
        if has_ca and self.client_auth_type == "NoClientCert":
            raise ValueError("client_ca_file is set but client_auth_type is NoClientCert: "
                             "set client_auth_type: RequireAndVerifyClientCert")
        if self.client_allowed_sans and self.client_auth_type != "RequireAndVerifyClientCert":
            raise ValueError("client_allowed_sans needs client_auth_type: RequireAndVerifyClientCert")
        if _TLS_VERSIONS[self.min_version] > _TLS_VERSIONS[self.max_version]:
            raise ValueError(f"min_version {self.min_version} is above max_version {self.max_version}")
        unknown = [c for c in self.cipher_suites if c not in _GO_CIPHERS]
        if unknown:
            raise ValueError(f"cipher_suites: unknown or unsupported suite(s) {', '.join(unknown)} "
                             f"(known: {', '.join(_GO_CIPHERS)})")
        if self.curve_preferences:
            raise ValueError("curve_preferences is not supported by this exporter (OpenSSL chooses the curves)")
        return self


_HEADER_NAMES = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "X-XSS-Protection",
                 "Strict-Transport-Security")


class HTTPServerConfig(_Strict):
    http2: bool = True  # accepted for compatibility; this server speaks HTTP/1.1
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_headers(self) -> HTTPServerConfig:
        for name, value in self.headers.items():
            canonical = next((h for h in _HEADER_NAMES if h.lower() == name.lower()), None)
            if canonical is None:
                raise ValueError(f"headers: {name} is not one of {', '.join(_HEADER_NAMES)}")
            if canonical == "X-Frame-Options" and value.lower() not in ("deny", "sameorigin"):
                raise ValueError("headers: X-Frame-Options must be deny or sameorigin")
            if canonical == "X-Content-Type-Options" and value.lower() != "nosniff":
                raise ValueError("headers: X-Content-Type-Options must be nosniff")
        return self


class RateLimitConfig(_Strict):
    interval: str = "0s"
    burst: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _duration(self) -> RateLimitConfig:
        parse_duration(self.interval)
        return self


def parse_duration(text: str) -> float:
    """A Prometheus-style duration (`1h2m3s`, `500ms`, `0`) in seconds."""
    match = _DURATION.match(text.strip()) if text.strip() not in ("", "0") else None
    if text.strip() == "0":
        return 0.0
    if match is None or not any(match.groups()):
        raise ValueError(f"interval: {text!r} is not a duration like 1s, 500ms, 1m")
    h, m, s, ms = (int(g) if g else 0 for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000


class WebConfigFile(_Strict):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = Field(default_factory=HTTPServerConfig)
    basic_auth_users: dict[str, str] = Field(default_factory=dict, repr=False)
    rate_limit: RateLimitConfig | None = None

    @model_validator(mode="after")
    def _hashes(self) -> WebConfigFile:
        for user, hashed in self.basic_auth_users.items():
            if not isinstance(hashed, str) or not _BCRYPT_HASH.match(hashed):
                # never echo the value: it may be a plain-text password by mistake
                raise ValueError(f"basic_auth_users: the value for user {user!r} is not a bcrypt hash "
                                 "(expected $2y$10$...; generate one with `htpasswd -nBC 10 \"\"`)")
        return self


@dataclass
class WebConfig:
    """The loaded web configuration, ready for the server."""

    ssl_context: ssl.SSLContext | None = None
    require_client_cert: bool = False  # enforced per request so probes stay reachable
    client_allowed_sans: frozenset[str] = frozenset()
    users: dict[str, bytes] = field(default_factory=dict, repr=False)
    headers: dict[str, str] = field(default_factory=dict)
    rate_interval: float = 0.0
    rate_burst: int = 0


def _read(base: Path, key: str, name: str) -> Path:
    path = Path(name)
    if not path.is_absolute():
        path = base / path  # the toolkit resolves relative paths against the config file's directory
    if not path.is_file():
        raise WebConfigError(f"tls_server_config.{key}: {path}: no such file")
    return path


def _ssl_context(tls: TLSServerConfig, base: Path, where: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _TLS_VERSIONS[tls.min_version]
    ctx.maximum_version = _TLS_VERSIONS[tls.max_version]
    if tls.cipher_suites:
        try:
            ctx.set_ciphers(":".join(_GO_CIPHERS[c] for c in tls.cipher_suites))
        except ssl.SSLError as exc:
            raise WebConfigError(f"{where}: tls_server_config.cipher_suites: {exc}") from None
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    with tempfile.TemporaryDirectory(prefix="netpol-exporter-tls-") as tmp:
        # inline PEM values go through a private temporary file (ssl loads chains from files only)
        cert_path = _read(base, "cert_file", tls.cert_file) if tls.cert_file else Path(tmp, "cert.pem")
        key_path = _read(base, "key_file", tls.key_file) if tls.key_file else Path(tmp, "key.pem")
        if tls.cert:
            cert_path.write_text(tls.cert)
        if tls.key:
            key_path.touch(mode=0o600)
            key_path.write_text(tls.key)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, ValueError) as exc:
            raise WebConfigError(f"{where}: tls_server_config.cert_file/key_file: cannot load the certificate "
                                 f"and key ({exc.__class__.__name__}: {getattr(exc, 'reason', None) or exc})"
                                 ) from None
    if tls.client_auth_type != "NoClientCert":
        try:
            if tls.client_ca_file:
                ctx.load_verify_locations(cafile=str(_read(base, "client_ca_file", tls.client_ca_file)))
            else:
                ctx.load_verify_locations(cadata=tls.client_ca)
        except (ssl.SSLError, ValueError) as exc:
            raise WebConfigError(f"{where}: tls_server_config.client_ca_file: cannot load the CA ({exc})") from None
        # Verify any certificate offered; a missing one is refused per request (probes excepted).
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _problems(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_web_config(data: Mapping[str, Any] | None, where: str = "web config", base: Path | None = None) -> WebConfig:
    try:
        model = WebConfigFile.model_validate(data or {})
    except ValidationError as exc:
        raise WebConfigError(f"{where}: {_problems(exc)}") from None
    base = base or Path.cwd()
    web = WebConfig(
        users={user: hashed.encode() for user, hashed in model.basic_auth_users.items()},
        headers={next(h for h in _HEADER_NAMES if h.lower() == k.lower()): v
                 for k, v in model.http_server_config.headers.items() if v},
    )
    if model.rate_limit is not None:
        web.rate_interval = parse_duration(model.rate_limit.interval)
        web.rate_burst = model.rate_limit.burst
    tls = model.tls_server_config
    if tls is not None:
        try:
            web.ssl_context = _ssl_context(tls, base, where)
        except WebConfigError as exc:
            message = str(exc)
            raise WebConfigError(message if message.startswith(where) else f"{where}: {message}") from None
        web.require_client_cert = tls.client_auth_type == "RequireAndVerifyClientCert"
        web.client_allowed_sans = frozenset(tls.client_allowed_sans)
    return web


def load_web_config(path: str | Path) -> WebConfig:
    """Read and validate a web config file; WebConfigError names the file and the key."""
    path = Path(path)
    data = load_yaml_mapping(path, WebConfigError)
    return parse_web_config(data, str(path), path.resolve().parent)
