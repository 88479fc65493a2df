"""The running exporter: supervised sources, periodic expiry, optional enrichment, the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from exporter.exposition import MetricFamily
from exporter.pipeline import Pipeline
from exporter.service.scrape import GCPause
from exporter.sources.base import Source

if TYPE_CHECKING:
    from exporter.service.webconfig import WebConfig

log = logging.getLogger("netpol_exporter.service")

EXPIRY_INTERVAL = 30.0
STATE_DIR_CHECK_INTERVAL = 60.0
RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
CLOSE_TIMEOUT = 5.0


class Enrichment(Protocol):
    """What the service needs from exporter.kube.attach.attach()'s result."""

    @property
    def synced(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class ServiceStats:
    source_failures: dict[str, int] = field(default_factory=dict)
    state_dir_writable: bool | None = None  # None: no state dir configured
    last_render_seconds: float = 0.0
    scrapes: int = 0


def split_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT`, `[::1]:PORT`, `:PORT` → (host, port); an empty host means all interfaces."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    return host or "0.0.0.0", int(port)


def check_state_dir(path: str) -> str | None:
    """None when `path` can hold checkpoints (created if missing), else the problem."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        return f"{exc.strerror or exc}"
    return None


class Service:
    def __init__(
        self,
        pipeline: Pipeline,
        sources: Sequence[Source],
        *,
        listen: str,
        enrichment: Enrichment | None = None,
        web_config: WebConfig | None = None,
        state_dir: str | None = None,
        expiry_interval: float = EXPIRY_INTERVAL,
    ) -> None:
        self.pipeline = pipeline
        self.sources = list(sources)
        self.listen = listen
        self.enrichment = enrichment
        self.web_config = web_config
        self.state_dir = state_dir
        self.expiry_interval = expiry_interval
        self.stats = ServiceStats()
        self.started_at = time.time()
        self.stop_event = asyncio.Event()
        self.gc_pause = GCPause()
        self.addresses: list[tuple[str, int]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None
        pipeline.self_metrics.collectors.append(self.collect)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        from exporter.service.http import build_app, runner_options

        self._check_state_dir()
        if self.enrichment is not None:
            try:
                await self.enrichment.start()
            except Exception as exc:
                log.error("kubernetes enrichment failed to start; counting without it", extra={"error": str(exc)})
                self.enrichment = None
        self._runner = web.AppRunner(build_app(self), access_log=logging.getLogger("aiohttp.access"),
                                     handle_signals=False, **runner_options())
        await self._runner.setup()
        host, port = split_listen(self.listen)
        ssl_context = self.web_config.ssl_context if self.web_config is not None else None
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context, reuse_address=True)
        await site.start()
        for addr in self._runner.addresses:
            self.addresses.append((str(addr[0]), int(addr[1])))
        for source in self.sources:
            self._tasks.append(asyncio.create_task(self._supervise(source), name=f"source {source.spec}"))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        scheme = "https" if ssl_context is not None else "http"
        log.info("listening", extra={"address": f"{scheme}://{self.url_host()}", "sources": len(self.sources)})

    def url_host(self) -> str:
        host, port = self.addresses[0] if self.addresses else split_listen(self.listen)
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def stop(self) -> None:
        """Stop reading, close every source (flushing checkpoints), stop the server."""
        self.stop_event.set()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=CLOSE_TIMEOUT)
            for task in pending:
                log.warning("task did not stop in time; cancelling", extra={"task": task.get_name()})
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for source in self.sources:
            try:
                await asyncio.wait_for(source.close(), CLOSE_TIMEOUT)
            except Exception as exc:
                log.error("closing source failed", extra={"source": source.spec, "error": repr(exc)})
            if source.status.state != "failed":
                source.set_state("stopped")
        if self.enrichment is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.enrichment.stop(), CLOSE_TIMEOUT)
        if self._runner is not None:
            await self._runner.cleanup()
        log.info("stopped")

    # -- supervision -------------------------------------------------------------------------------

    async def _supervise(self, source: Source) -> None:
        attempt = 0
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                await source.run(self.stop_event)
                return  # finished on its own (stdin at EOF) or stopped
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.stats.source_failures[source.spec] = self.stats.source_failures.get(source.spec, 0) + 1
                if time.monotonic() - started > RESTART_BACKOFF[-1]:
                    attempt = 0  # it ran for a while: start the backoff over
                delay = RESTART_BACKOFF[min(attempt, len(RESTART_BACKOFF) - 1)]
                attempt += 1
                source.set_state("failed", f"{type(exc).__name__}: {exc}")
                log.error("source failed; restarting", exc_info=exc,
                          extra={"source": source.spec, "retry_in_seconds": delay})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), delay)

    async def _housekeeping(self) -> None:
        last_check = time.monotonic()
        while not self.stop_event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), self.expiry_interval)
            if self.stop_event.is_set():
                return
            try:
                removed = self.pipeline.expire()
                if removed:
                    log.debug("expired idle series", extra={"series": removed})
            except Exception as exc:  # never let housekeeping die
                log.error("series expiry failed", exc_info=exc)
            if self.state_dir and time.monotonic() - last_check >= STATE_DIR_CHECK_INTERVAL:
                last_check = time.monotonic()
                await asyncio.to_thread(self._check_state_dir)

    def _check_state_dir(self) -> None:
        if not self.state_dir:
            return
        problem = check_state_dir(self.state_dir)
        was = self.stats.state_dir_writable
        self.stats.state_dir_writable = problem is None
        if problem is not None and was is not False:
            log.error("state dir is not writable: read positions will not be checkpointed; counting continues",
                      extra={"state_dir": self.state_dir, "error": problem})
        elif problem is None and was is False:
            log.info("state dir is writable again", extra={"state_dir": self.state_dir})

    # -- status ------------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, list[str]]:
        """(ready, what is not ready)."""
        problems = []
        for source in self.sources:
            status = source.status
            if status.state != "running":
                detail = f": {status.detail}" if status.detail else ""
                problems.append(f"source {source.spec} is {status.state}{detail}")
        if self.enrichment is not None and not self.enrichment.synced:
            problems.append("kubernetes enrichment has not synced its caches yet")
        if self.stop_event.is_set():
            problems.append("shutting down")
        return not problems, problems

    def describe_enrichment(self) -> dict[str, Any] | None:
        if self.enrichment is None:
            return None
        describe = getattr(self.enrichment, "describe", None)
        info: dict[str, Any] = describe() if callable(describe) else {}
        info["synced"] = bool(self.enrichment.synced)
        return info

    def describe_sources(self) -> list[dict[str, Any]]:
        out = []
        for source in self.sources:
            info = source.describe()
            info["failures"] = self.stats.source_failures.get(source.spec, 0)
            out.append(info)
        return out

    def scraped(self, seconds: float) -> None:
        self.stats.last_render_seconds = seconds
        self.stats.scrapes += 1

    def collect(self) -> Iterable[MetricFamily]:
        failures = MetricFamily("netpol_exporter_source_failures", "counter",
                                "Times a source stopped with an unexpected error and was restarted.", ("source",))
        for source in self.sources:
            failures.set(self.stats.source_failures.get(source.spec, 0), source.spec)
        yield failures
        ready = MetricFamily("netpol_exporter_ready", "gauge",
                             "1 when every source runs (and enrichment, when on, has synced).")
        ready.set(1 if self.readiness()[0] else 0)
        yield ready
        if self.state_dir:
            writable = MetricFamily("netpol_exporter_state_dir_writable", "gauge",
                                    "1 when the state dir accepts checkpoint writes.")
            writable.set(1 if self.stats.state_dir_writable else 0)
            yield writable
        render = MetricFamily("netpol_exporter_scrape_render_seconds", "gauge",
                              "Time the previous scrape took to render and send the exposition.")
        render.set(round(self.stats.last_render_seconds, 6))
        yield render


async def serve(service: Service, duration: float | None = None) -> int:
    """Run until SIGTERM/SIGINT (or `duration` seconds); 0 on a clean stop, 1 when it cannot listen."""
    loop = asyncio.get_running_loop()
    signals_seen: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        signals_seen.append(sig.name)
        if len(signals_seen) == 1:
            log.info("signal received; stopping", extra={"signal": sig.name})
            service.stop_event.set()
        else:
            log.warning("second signal; exiting immediately", extra={"signal": sig.name})
            os._exit(1)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        try:
            await service.start()
        except OSError as exc:
            log.error("cannot listen", extra={"listen": service.listen, "error": exc.strerror or str(exc)})
            await service.stop()
            return 1
        try:
            if duration is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(service.stop_event.wait(), duration)
            else:
                await service.stop_event.wait()
        finally:
            await service.stop()
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
