"""The aiohttp application: /metrics, probes, the landing page and the JSON API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from exporter.exposition import negotiate
from exporter.service.auth import BasicAuth
from exporter.service.landing import landing_page, rfc3339
from exporter.service.scrape import GzipStream, render_chunks

if TYPE_CHECKING:
    from exporter.service.runtime import Service

SCRAPE_TIMEOUT = 120.0
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
SERVICE_KEY = web.AppKey("service", object)
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


def _security_middleware(service: Service) -> Any:
    web_config = service.web_config
    auth = BasicAuth(web_config.users) if web_config is not None and web_config.users else None
    bucket = (_TokenBucket(web_config.rate_interval, web_config.rate_burst)
              if web_config is not None and web_config.rate_interval > 0 else None)
    headers: dict[str, str] = web_config.headers if web_config is not None else {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await _guarded(request, handler)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PROBE_PATHS:
            return await handler(request)  # probes stay reachable without credentials
        if web_config is not None and web_config.require_client_cert:
            sans = _peer_sans(request)
            if sans is None:
                return web.Response(status=403, text="a client certificate is required\n")
            if web_config.client_allowed_sans and not (sans & web_config.client_allowed_sans):
                return web.Response(status=403, text="client certificate not allowed\n")
        if bucket is not None and not bucket.take():
            return web.Response(status=429, text="too many requests\n")
        if auth is not None and not await auth.check(request.headers.get("Authorization")):
            return web.Response(status=401, text="unauthorized\n",
                                headers={"WWW-Authenticate": 'Basic realm="netpol-exporter", charset="UTF-8"'})
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


async def readyz(request: web.Request) -> web.StreamResponse:
    service = _service(request)
    ready, problems = service.readiness()
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
    app = web.Application(middlewares=[_security_middleware(service)], client_max_size=64 * 1024)
    app[SERVICE_KEY] = service
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", landing)
    app.router.add_get("/api/v1/denied-flows", denied_flows)
    app.router.add_get("/api/v1/sources", sources)
    return app
