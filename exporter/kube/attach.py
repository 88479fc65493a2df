"""Wire the Kubernetes enrichment into a Pipeline: `attach()` for `run`, `attach_for_once()` for `once`.

Switched on when `kubernetes.enabled` is true, or when it is unset (auto) and a kubeconfig is given
or the process runs in a pod (KUBERNETES_SERVICE_HOST). `--no-kubernetes` (enabled false) never
contacts an API server. RBAC: get/list/watch on pods, replicasets (apps), namespaces,
networkpolicies (networking.k8s.io), ciliumnetworkpolicies and ciliumclusterwidenetworkpolicies
(cilium.io), networkpolicies and globalnetworkpolicies (projectcalico.org), adminnetworkpolicies,
baselineadminnetworkpolicies and clusternetworkpolicies (policy.networking.k8s.io) — the optional
ones watched when served — cluster-wide; nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from exporter.config import Config, KubernetesConfig
from exporter.counting import DEFAULT_DENY_REASON
from exporter.exposition import MetricFamily
from exporter.kube.enrich import Enricher
from exporter.kube.kinds import KINDS, OPTIONAL, list_calls, sinks
from exporter.kube.metrics import policy_families, watch_families
from exporter.kube.state import ClusterState
from exporter.kube.watch import Watcher, WatchTiming
from exporter.model import FAMILY_LABELS, Family, FlowRecord
from exporter.pipeline import Pipeline

log = logging.getLogger("netpol_exporter.kube")

ONCE_SYNC_TIMEOUT_S: Final = 60.0
SEED_INTERVAL_S: Final = 60.0
# `run`: how long start() waits for the first sync before sources begin counting (the HTTP server
# starts after it too; the shipped liveness probes tolerate 60 s).
START_SYNC_WAIT_S: Final = 10.0


class KubeConfigError(Exception):
    """No usable cluster configuration (kubeconfig unreadable, in-cluster files missing)."""


def _api_client(cfg: KubernetesConfig, env: Mapping[str, str]) -> tuple[Any, str] | None:
    """(ApiClient, how it was configured), or None when enrichment is off."""
    if cfg.enabled is False:
        return None
    from kubernetes import client, config

    configuration = client.Configuration()
    configuration.retries = 1  # one quick retry (stale pooled connections); the watchers back off themselves
    configuration.connection_pool_maxsize = 2 * len(KINDS)  # a watch per kind, and its re-list beside it
    try:
        if cfg.kubeconfig:
            return (config.new_client_from_config(config_file=cfg.kubeconfig, client_configuration=configuration),
                    f"kubeconfig {cfg.kubeconfig}")
        if env.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration), "in-cluster service account"
        if cfg.enabled:  # explicitly on: $KUBECONFIG or ~/.kube/config
            return config.new_client_from_config(client_configuration=configuration), "default kubeconfig"
    except Exception as exc:  # the loaders raise ConfigException, OSError, YAML and key errors
        where = cfg.kubeconfig or ("in-cluster config" if env.get("KUBERNETES_SERVICE_HOST") else "kubeconfig")
        raise KubeConfigError(f"{where}: {exc}") from None
    return None


def _seed_key(policy: str, direction: str) -> tuple[str, ...]:
    """The zero-seeded dropped series: policy, direction, reason POLICY_DENIED, every other label empty."""
    values = {"policy": policy, "direction": direction, "reason": DEFAULT_DENY_REASON}
    return tuple(values.get(name, "") for name in FAMILY_LABELS[Family.DROPPED])


class KubeEnrichment:
    """Watches, caches, the enricher and the metrics of one cluster."""

    def __init__(self, pipeline: Pipeline, api_client: Any, source: str = "", *,
                 timing: WatchTiming | None = None, seed_interval_s: float = SEED_INTERVAL_S,
                 start_sync_wait_s: float = START_SYNC_WAIT_S) -> None:
        self.pipeline = pipeline
        self.api_client = api_client
        self.source = source
        self.server = str(getattr(getattr(api_client, "configuration", None), "host", ""))
        self.state = ClusterState()
        self.enricher = Enricher(self.state)
        self.seed_interval_s = seed_interval_s
        self.start_sync_wait_s = start_sync_wait_s
        calls = list_calls(api_client)
        kind_sinks = sinks(self.state)
        self.watchers = {kind: Watcher(kind, calls[kind], kind_sinks[kind], timing, optional=kind in OPTIONAL)
                         for kind in KINDS}
        self._installed = False
        self._seed_task: asyncio.Task[None] | None = None
        self._seed_wanted: asyncio.Event | None = None

    @property
    def synced(self) -> bool:
        return all(w.stats.synced for w in self.watchers.values())

    # -- lifecycle ------------------------------------------------------------------------
    def start_threads(self) -> None:
        """Install the enricher and collectors, start the watch threads (returns at once)."""
        if not self._installed:
            counter = self.pipeline.counter
            previous = counter.enrich
            if previous is None:
                counter.enrich = self.enricher
            else:
                enricher = self.enricher

                def chained(record: FlowRecord) -> FlowRecord:
                    return enricher(previous(record))

                counter.enrich = chained
            self.pipeline.self_metrics.collectors.append(self.collect)
            self._installed = True
        log.info("kubernetes enrichment: watching %s (%s)", self.server, self.source)
        for watcher in self.watchers.values():
            watcher.start()

    def wait_synced(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        return all(w.wait_synced(max(0.0, deadline - time.monotonic())) for w in self.watchers.values())

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the watch threads (blocking, bounded)."""
        for watcher in self.watchers.values():
            watcher.stop()
        deadline = time.monotonic() + timeout_s
        for watcher in self.watchers.values():
            watcher.join(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(Exception):
            self.api_client.close()

    async def start(self) -> None:
        """Start watching and wait (bounded) for the first sync, so the first flows counted are enriched.

        Zero-seeding runs on the event loop (the stores are not thread-safe).
        """
        loop = asyncio.get_running_loop()
        wanted = self._seed_wanted = asyncio.Event()

        def policies_changed() -> None:  # called from a watch thread
            loop.call_soon_threadsafe(wanted.set)

        self.state.on_policies_changed.append(policies_changed)
        self.start_threads()
        self._seed_task = asyncio.create_task(self._seed_loop(wanted), name="kube-seed")
        if not await asyncio.to_thread(self.wait_synced, self.start_sync_wait_s):
            log.warning("kubernetes caches not synced after %gs; counting starts without them (flows keep the "
                        "names they carry until the sync completes)", self.start_sync_wait_s)

    async def stop(self) -> None:
        if self._seed_task is not None:
            self._seed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._seed_task
        await asyncio.to_thread(self.close)

    async def _seed_loop(self, wanted: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wanted.wait(), self.seed_interval_s)
            wanted.clear()
            self.seed()

    # -- zero-seeding ---------------------------------------------------------------------
    def seed(self) -> int:
        """Make every policy's dropped series exist at 0 per direction it isolates; returns how many keys."""
        store = self.pipeline.stores[Family.DROPPED]
        now = time.monotonic()
        n = 0
        for policy in self.state.policies.values():
            for direction in policy.directions:
                store.ensure(_seed_key(policy.key, direction), now)
                n += 1
        return n

    # -- observability --------------------------------------------------------------------
    def collect(self) -> Iterable[MetricFamily]:
        yield from watch_families(self.watchers)
        yield from policy_families(self.state)

    def describe(self) -> dict[str, Any]:
        """For /readyz and the landing page."""
        kinds: dict[str, Any] = {}
        for kind, w in self.watchers.items():
            s = w.stats
            kinds[kind] = {
                "synced": s.synced,
                "served": s.served,
                "connected": s.connected,
                "objects": len(w.sink),
                "errors": s.errors,
                "relists": s.relists,
                "last_error": s.last_error,
                "last_error_time": s.last_error_time or None,
                "last_sync_time": s.last_sync_time or None,
            }
        return {
            "enabled": True,
            "server": self.server,
            "config": self.source,
            "synced": self.synced,
            "connected": all(w.stats.connected for w in self.watchers.values()),
            "default_deny_attributed": self.enricher.attributed,
            "kinds": kinds,
        }


def attach(pipeline: Pipeline, config: Config | None = None, *, env: Mapping[str, str] | None = None,
           timing: WatchTiming | None = None) -> KubeEnrichment | None:
    """The enrichment for `run` (not started: `await enrichment.start()`), or None when off or unconfigured."""
    cfg = (config or pipeline.config).kubernetes
    try:
        found = _api_client(cfg, os.environ if env is None else env)
    except KubeConfigError as exc:
        log.error("kubernetes enrichment off: %s", exc)
        return None
    if found is None:
        log.info("kubernetes enrichment off (no kubeconfig given, not in a cluster)")
        return None
    api_client, source = found
    return KubeEnrichment(pipeline, api_client, source, timing=timing)


class OnceEnrichment:
    """What `once` holds while it counts: synced caches, seeded series; `stop()` ends the watches."""

    def __init__(self, enrichment: KubeEnrichment) -> None:
        self.enrichment = enrichment

    def stop(self) -> None:
        self.enrichment.close()


def attach_for_once(pipeline: Pipeline, *, sync_timeout_s: float = ONCE_SYNC_TIMEOUT_S,
                    env: Mapping[str, str] | None = None, timing: WatchTiming | None = None) -> OnceEnrichment | None:
    """Sync the caches before `once` counts; exits with a clear message when they cannot sync in time."""
    cfg = pipeline.config.kubernetes
    try:
        found = _api_client(cfg, os.environ if env is None else env)
    except KubeConfigError as exc:
        if cfg.enabled or cfg.kubeconfig:
            raise SystemExit(f"netpol-exporter: kubernetes: {exc}") from None
        log.warning("kubernetes enrichment off: %s", exc)
        return None
    if found is None:
        return None
    enrichment = KubeEnrichment(pipeline, found[0], found[1], timing=timing)
    enrichment.start_threads()
    if not enrichment.wait_synced(sync_timeout_s):
        problems = "; ".join(
            f"{kind}: {w.stats.last_error or 'no answer yet'}"
            for kind, w in enrichment.watchers.items() if not w.stats.synced
        )
        enrichment.close()
        raise SystemExit(f"netpol-exporter: kubernetes: caches not synced within {sync_timeout_s:g}s from "
                         f"{enrichment.server} ({problems}); use --no-kubernetes to count without enrichment")
    enrichment.seed()
    return OnceEnrichment(enrichment)
