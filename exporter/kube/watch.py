"""List-then-watch for one kind, in its own thread, through the `kubernetes` client.

The protocol (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes):
list (paginated with limit/continue) to get the state and the list's resourceVersion, then watch
from that resourceVersion with bookmarks on, following every event's and bookmark's
resourceVersion. When the server closes the watch (its timeout), watch again from the last
resourceVersion. 410 Gone (an ERROR event with a Status of code 410, or HTTP 410 on a list whose
continue token expired) means the history is gone: list again. Any other failure (server down,
timeouts, 5xx, 403) backs off exponentially and retries the watch from the last resourceVersion,
or the list when there is none. The cache keeps its last known state meanwhile.

An optional kind (a CRD such as CiliumNetworkPolicy) answering 404 is not served: its cache is
emptied, it counts as synced (there is nothing to know), and the list is tried again every
`absent_recheck_s`, so a CRD installed later is picked up (and one removed is emptied).

The client is used with `_preload_content=False`: responses are decoded with msgspec into the
few fields the enrichment reads, not into the client's models.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from exporter.kube.objects import decode_event, decode_list, decode_meta, decode_status

log = logging.getLogger("netpol_exporter.kube")


class Sink(Protocol):
    """Where one kind's objects go (exporter.kube.kinds)."""

    def replace(self, items_json: list[bytes]) -> None: ...  # one JSON array per list page
    def apply(self, event_type: str, object_json: bytes) -> str: ...  # returns the resourceVersion
    def __len__(self) -> int: ...


class Gone(Exception):
    """410: the resourceVersion or continue token is too old; list again."""


class WatchFailed(Exception):
    """A watch ERROR event other than 410."""


@dataclass
class WatchStats:
    synced: bool = False  # a complete list has been loaded (stays true through outages)
    served: bool = True  # False while an optional kind's resource answers 404 (CRD not installed)
    connected: bool = False  # the last request succeeded and the watch is streaming
    errors: int = 0
    relists: int = 0  # lists after the first (410 Gone)
    events: int = 0
    last_error: str = ""
    last_error_time: float = 0.0
    last_sync_time: float = 0.0
    synced_event: threading.Event = field(default_factory=threading.Event, repr=False)


@dataclass
class WatchTiming:
    page_size: int = 500
    watch_timeout_s: int = 300  # server-side timeout of one watch request (then re-watch)
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0  # list requests; watches get watch_timeout_s + this
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    absent_recheck_s: float = 60.0  # how often an optional kind that is not served is looked for again


def _short(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    reason = getattr(exc, "reason", None)
    if status is not None:  # ApiException
        return f"HTTP {status} {reason or ''}".strip()
    cause = getattr(exc, "reason", None)  # urllib3's MaxRetryError wraps the connection error
    text = str(cause if isinstance(cause, BaseException) else exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


class Watcher:
    def __init__(self, kind: str, list_call: Callable[..., Any], sink: Sink, timing: WatchTiming | None = None,
                 *, optional: bool = False) -> None:
        self.kind = kind
        self.optional = optional
        self.list_call = list_call
        self.sink = sink
        self.timing = timing or WatchTiming()
        self.stats = WatchStats()
        self._stopping = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"kube-watch-{kind}", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        _abort(self._response)

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wait_synced(self, timeout: float) -> bool:
        return self.stats.synced_event.wait(timeout)

    # -- the loop -------------------------------------------------------------------------
    def _run(self) -> None:
        rv: str | None = None
        backoff = self.timing.backoff_initial_s
        gone_in_a_row = 0
        while not self._stopping.is_set():
            try:
                if rv is None:
                    rv = self._list()
                started, events = time.monotonic(), self.stats.events
                rv = self._watch(rv)
                gone_in_a_row = 0
                if self.stats.events == events and time.monotonic() - started < 1.0:
                    # closed at once without an event (a proxy cutting streams): do not spin
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, self.timing.backoff_max_s)
                else:
                    backoff = self.timing.backoff_initial_s
            except Gone as exc:
                if self._stopping.is_set():
                    break
                rv = None
                self.stats.relists += 1
                gone_in_a_row += 1
                log.info("kubernetes %s: %s; listing again", self.kind, exc)
                if gone_in_a_row > 2:  # a server answering 410 to fresh lists: do not spin
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, self.timing.backoff_max_s)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                if self.optional and getattr(exc, "status", None) == 404:
                    self._not_served()
                    rv = None
                    self._stopping.wait(self.timing.absent_recheck_s)
                    continue
                self._failed(exc, backoff)
                self._stopping.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.timing.backoff_max_s)
        self.stats.connected = False

    def _not_served(self) -> None:
        stats = self.stats
        if stats.served or not stats.synced:
            log.info("kubernetes %s: not served by this cluster (CRD not installed); looking again every %gs",
                     self.kind, self.timing.absent_recheck_s)
            self.sink.replace([])
        stats.served = False
        stats.synced = stats.connected = True  # nothing to watch is a complete, healthy state
        stats.last_sync_time = time.time()
        stats.synced_event.set()

    def _failed(self, exc: Exception, backoff: float) -> None:
        stats = self.stats
        first = stats.connected or not stats.errors
        stats.errors += 1
        stats.connected = False
        stats.last_error = _short(exc)
        stats.last_error_time = time.time()
        state = "using the last known state" if stats.synced else "not synced yet"
        level = logging.WARNING if first or backoff >= self.timing.backoff_max_s else logging.DEBUG
        log.log(level, "kubernetes %s: %s (%s; retrying in %.1fs)", self.kind, stats.last_error, state, backoff)

    def _list(self) -> str:
        pages: list[bytes] = []
        token = ""
        timing = self.timing
        while True:
            kwargs: dict[str, Any] = {"limit": timing.page_size}
            if token:
                kwargs["_continue"] = token
            try:
                resp = self.list_call(_preload_content=False,
                                      _request_timeout=(timing.connect_timeout_s, timing.read_timeout_s), **kwargs)
            except Exception as exc:
                if getattr(exc, "status", None) == 410:
                    raise Gone(f"list continue token expired ({_short(exc)})") from None
                raise
            try:
                body = resp.data
            finally:
                resp.release_conn()
            page = decode_list(body)
            pages.append(bytes(page.items))
            token = page.metadata.continue_
            if not token:
                break
        self.sink.replace(pages)
        stats = self.stats
        if not stats.served:
            log.info("kubernetes %s: now served; %d objects", self.kind, len(self.sink))
            stats.served = True
        elif stats.synced:
            log.info("kubernetes %s: re-listed %d objects", self.kind, len(self.sink))
        stats.synced = stats.connected = True
        stats.last_sync_time = time.time()
        stats.synced_event.set()
        return page.metadata.resource_version

    def _watch(self, rv: str) -> str:
        from kubernetes.watch.watch import iter_resp_lines  # deferred: `once` without a cluster never pays for it

        timing = self.timing
        try:
            resp = self.list_call(
                watch=True, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=timing.watch_timeout_s,
                _preload_content=False, _request_timeout=(timing.connect_timeout_s,
                                                          timing.watch_timeout_s + timing.read_timeout_s),
            )
        except Exception as exc:
            if getattr(exc, "status", None) == 410:
                raise Gone(f"resourceVersion {rv} too old ({_short(exc)})") from None
            raise
        self._response = resp
        try:
            if self._stopping.is_set():
                return rv
            if not self.stats.connected:
                log.info("kubernetes %s: watching again from resourceVersion %s", self.kind, rv)
            self.stats.connected = True
            for line in iter_resp_lines(resp):
                if not line:
                    continue
                event = decode_event(line)
                if event.type == "ERROR":
                    status = decode_status(event.object)
                    if status.code == 410:
                        raise Gone(f"watch expired: {status.message or status.reason}")
                    raise WatchFailed(f"watch error {status.code} {status.reason}: {status.message}")
                if event.type == "BOOKMARK":
                    rv = decode_meta(event.object).metadata.resource_version or rv
                else:
                    rv = self.sink.apply(event.type, bytes(event.object)) or rv
                    self.stats.events += 1
                if self._stopping.is_set():
                    break
            return rv
        finally:
            self._response = None
            resp.close()  # an unfinished stream must not go back to the pool
            resp.release_conn()


def _abort(resp: Any) -> None:
    """Unblock a thread reading a watch stream (shut the socket down; closing alone may hang)."""
    if resp is None:
        return
    try:
        sock = getattr(getattr(resp, "connection", None), "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
