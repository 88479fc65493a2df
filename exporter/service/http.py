"""The aiohttp application: /metrics, probes, the landing page and the JSON API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from exporter.exposition import negotiate
from exporter.service.auth import AuthBusy, BasicAuth
from exporter.service.landing import landing_page, rfc3339
from exporter.service.scrape import GzipStream, render_chunks

if TYPE_CHECKING:
    from exporter.service.runtime import Service

SCRAPE_TIMEOUT = 120.0
# A connection with no complete request header for this long — new, or idle after a response — is closed
# (aiohttp's keep-alive timer also runs from the connection's start). Request bodies are never read here:
# none of the routes takes one, and an unread body is not drained (the connection is closed instead).
IDLE_TIMEOUT_SECONDS = 30.0
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
SERVICE_KEY = web.AppKey("service", object)
AUTHENTICATED_KEY = web.RequestKey("authenticated", bool)
AUTH_KEY = web.AppKey("auth", object)  # the BasicAuth in use, or None
RATE_LIMIT_CLIENTS = 4096  # token buckets kept (per user or client address); idle full ones are dropped first


class _QuietBadRequests(logging.LoggerAdapter):  # type: ignore[type-arg,unused-ignore]
    """aiohttp's server logger with malformed requests (a scanner's noise) at debug, not one error each;
    exceptions of the handlers themselves stay errors."""

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if str(msg).startswith("Error handling request"):
            self.debug(msg, *args, **kwargs)
        else:
            super().exception(msg, *args, **kwargs)


def runner_options() -> dict[str, Any]:
    """aiohttp AppRunner settings every listener uses: header/idle timeout, no draining, quiet bad requests."""
    return {"keepalive_timeout": IDLE_TIMEOUT_SECONDS, "lingering_time": 0,
            "logger": _QuietBadRequests(logging.getLogger("aiohttp.server"), {})}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _service(request: web.Request) -> Service:
    return request.app[SERVICE_KEY]  # type: ignore[return-value]


def _peer_sans(request: web.Request) -> set[str] | None:
    """Subject alternative names of a verified client certificate; None when none was presented."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return None
    return {value for _kind, value in cert.get("subjectAltName", ())}


class _TokenBucket:
    def __init__(self, interval: float, burst: int) -> None:
        self.interval, self.burst = interval, max(burst, 1)
        self.tokens = float(self.burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) / self.interval)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class _RateLimits:
    """One token bucket per authenticated user (per client address where no auth is configured)."""

    def __init__(self, interval: float, burst: int) -> None:
        self.interval, self.burst = interval, burst
        self.buckets: dict[str, _TokenBucket] = {}

    def take(self, client: str) -> bool:
        bucket = self.buckets.get(client)
        if bucket is None:
            if len(self.buckets) >= RATE_LIMIT_CLIENTS:
                self._forget_idle()
            bucket = self.buckets[client] = _TokenBucket(self.interval, self.burst)
        return bucket.take()

    def _forget_idle(self) -> None:
        now = time.monotonic()
        idle = [k for k, b in self.buckets.items() if b.tokens + (now - b.updated) / b.interval >= b.burst]
        for key in idle:
            del self.buckets[key]
        if len(self.buckets) >= RATE_LIMIT_CLIENTS:
            self.buckets.clear()


def _unauthorized() -> web.Response:
    return web.Response(status=401, text="unauthorized\n",
                        headers={"WWW-Authenticate": 'Basic realm="netpol-exporter", charset="UTF-8"'})


def _security_middleware(service: Service, auth: BasicAuth | None) -> Any:
    web_config = service.web_config
    limits = (_RateLimits(web_config.rate_interval, web_config.rate_burst)
              if web_config is not None and web_config.rate_interval > 0 else None)
    headers: dict[str, str] = web_config.headers if web_config is not None else {}

    def _certificate_refusal(request: web.Request) -> web.Response | None:
        if web_config is not None and web_config.require_client_cert:
            sans = _peer_sans(request)
            if sans is None:
                return web.Response(status=403, text="a client certificate is required\n")
            if web_config.client_allowed_sans and not (sans & web_config.client_allowed_sans):
                return web.Response(status=403, text="client certificate not allowed\n")
        return None

    async def _refusal(request: web.Request) -> tuple[web.Response | None, str]:
        """(the answer refusing the request, None when its client certificate and basic auth pass; the
        client to rate-limit: the user, else the address)."""
        refused = _certificate_refusal(request)
        if refused is not None:
            return refused, ""
        if auth is None:
            return None, request.remote or ""
        try:
            user = await auth.authenticate(request.headers.get("Authorization"))
        except AuthBusy:
            return web.Response(status=429, text="too many authentication attempts\n"), ""
        if user is None:
            return _unauthorized(), ""
        return None, f"user {user}"

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await _guarded(request, handler)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PROBE_PATHS:
            # Probes stay reachable without credentials; /readyz shows details only to valid ones.
            if request.path == "/readyz":
                request[AUTHENTICATED_KEY] = (await _refusal(request))[0] is None
            return await handler(request)
        refused, client = await _refusal(request)
        if refused is not None:
            return refused
        if limits is not None and not limits.take(client):
            return web.Response(status=429, text="too many requests\n")
        return await handler(request)

    return middleware


async def metrics(request: web.Request) -> web.StreamResponse:
    """Stream the exposition in chunks, yielding to the event loop between them (see service.scrape)."""
    service = _service(request)
    openmetrics, content_type = negotiate(request.headers.get("Accept"))
    gzip_stream = GzipStream() if "gzip" in request.headers.get("Accept-Encoding", "") else None
    response = web.StreamResponse(headers={"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"})
    if gzip_stream is not None:
        response.headers["Content-Encoding"] = "gzip"
    started = time.perf_counter()
    await response.prepare(request)
    if request.method == "HEAD":  # headers only: rendering would write to a client that reads no body
        await response.write_eof()
        return response
    # A client that stops reading would hold the GC pause: give up on it after SCRAPE_TIMEOUT.
    async with asyncio.timeout(SCRAPE_TIMEOUT):
        with service.gc_pause:
            for text in render_chunks(service.pipeline, openmetrics):
                data = text.encode()
                if gzip_stream is not None:
                    data = gzip_stream.compress(data)
                if data:
                    await response.write(data)  # waits while the client is slow: memory stays bounded
                await asyncio.sleep(0)  # let sources ingest between chunks
            if gzip_stream is not None:
                await response.write(gzip_stream.finish())
    await response.write_eof()
    service.scraped(time.perf_counter() - started)
    return response


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok\n")


def _anonymous_readiness(service: Service) -> list[str]:
    """What is not ready, naming sources by position and kind only (their specs hold paths)."""
    problems = [f"source {i} ({s.spec.partition(':')[0]}) is {s.status.state}"
                for i, s in enumerate(service.sources, 1) if s.status.state != "running"]
    if service.enrichment is not None and not service.enrichment.synced:
        problems.append("kubernetes enrichment has not synced its caches yet")
    if service.stop_event.is_set():
        problems.append("shutting down")
    return problems


async def readyz(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    ready, problems = service.readiness()
    if not request.get(AUTHENTICATED_KEY, True):
        anonymous = {"ready": ready, "not_ready": _anonymous_readiness(service)}
        return web.json_response(anonymous, status=200 if ready else 503)
    body: dict[str, Any] = {
        "ready": ready,
        "not_ready": problems,
        "sources": {s.spec: s.status.state for s in service.sources},
    }
    kube = service.describe_enrichment()
    if kube is not None:
        body["kubernetes_synced"] = kube["synced"]
        body["kubernetes"] = kube
    return web.json_response(body, status=200 if ready else 503)


async def landing(request: web.Request) -> web.StreamResponse:
    return web.Response(text=landing_page(_service(request)), content_type="text/html", charset="utf-8")


def _limit(request: web.Request, default: int) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    if not raw.isdigit():
        raise web.HTTPBadRequest(text=f'{{"error": "limit: expected a non-negative integer, got {raw[:40]!r}"}}',
                                 content_type="application/json")
    return int(raw)


async def denied_flows(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    ring = list(service.pipeline.recent_denied)
    limit = _limit(request, len(ring))
    newest = ring[::-1][:limit]
    flows = [
        {
            "time": rfc3339(f.time),
            "input": f.source_name,
            "source": f.source,
            "destination": f.destination,
            "destination_port": f.destination_port,
            "protocol": f.protocol,
            "policy": f.policy,
            "reason": f.reason,
            "direction": f.direction,
            "packets": f.packets,
        }
        for f in newest
    ]
    return web.json_response({"count": len(flows), "capacity": service.pipeline.recent_denied.maxlen,
                              "flows": flows})


async def sources(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    body: dict[str, Any] = {"sources": service.describe_sources()}
    kube = service.describe_enrichment()
    if kube is not None:
        body["kubernetes"] = kube
    return web.json_response(body)


def build_app(service: Service) -> web.Application:
    web_config = service.web_config
    auth = BasicAuth(web_config.users) if web_config is not None and web_config.users else None
    app = web.Application(middlewares=[_security_middleware(service, auth)], client_max_size=64 * 1024)
    app[SERVICE_KEY] = service
    app[AUTH_KEY] = auth
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", landing)
    app.router.add_get("/api/v1/denied-flows", denied_flows)
    app.router.add_get("/api/v1/sources", sources)
    return app
