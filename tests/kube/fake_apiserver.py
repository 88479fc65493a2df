"""A small Kubernetes API server speaking the real list/watch protocol, for driving the real client.

- Lists: `{"kind": "<Kind>List", "metadata": {"resourceVersion", "continue"}, "items": [...]}`, paginated
  with `limit`/`continue` from a snapshot; a continue token older than the compaction point → HTTP 410.
- Watches (`?watch=true&resourceVersion=N&allowWatchBookmarks=true&timeoutSeconds=T`): HTTP 200 with a
  chunked stream of `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}` lines, starting
  after N; a resourceVersion older than the compaction point → an ERROR event with a 410 Status.
- One resourceVersion counter for every kind (like etcd's revision); bearer-token auth.
- `stop()`/`start()` kill and revive the server on the same port (state kept, like etcd);
  `expire()` compacts the history and ends every open watch with an ERROR 410 event.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

PATHS = {
    "pods": ("/api/v1/pods", "Pod", "v1"),
    "replicasets": ("/apis/apps/v1/replicasets", "ReplicaSet", "apps/v1"),
    "namespaces": ("/api/v1/namespaces", "Namespace", "v1"),
    "networkpolicies": ("/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy", "networking.k8s.io/v1"),
    "ciliumnetworkpolicies": ("/apis/cilium.io/v2/ciliumnetworkpolicies", "CiliumNetworkPolicy", "cilium.io/v2"),
    "ciliumclusterwidenetworkpolicies": ("/apis/cilium.io/v2/ciliumclusterwidenetworkpolicies",
                                         "CiliumClusterwideNetworkPolicy", "cilium.io/v2"),
    "networkpolicies.projectcalico.org": ("/apis/projectcalico.org/v3/networkpolicies", "NetworkPolicy",
                                          "projectcalico.org/v3"),
    "globalnetworkpolicies.projectcalico.org": ("/apis/projectcalico.org/v3/globalnetworkpolicies",
                                                "GlobalNetworkPolicy", "projectcalico.org/v3"),
    "adminnetworkpolicies": ("/apis/policy.networking.k8s.io/v1alpha1/adminnetworkpolicies", "AdminNetworkPolicy",
                             "policy.networking.k8s.io/v1alpha1"),
    "baselineadminnetworkpolicies": ("/apis/policy.networking.k8s.io/v1alpha1/baselineadminnetworkpolicies",
                                     "BaselineAdminNetworkPolicy", "policy.networking.k8s.io/v1alpha1"),
    "clusternetworkpolicies": ("/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies",
                               "ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2"),
}
# Kinds whose generation the server bumps on spec changes (objects with a spec the API versions).
_VERSIONED = {"networkpolicies", "ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies",
              "networkpolicies.projectcalico.org", "globalnetworkpolicies.projectcalico.org", "adminnetworkpolicies",
              "baselineadminnetworkpolicies", "clusternetworkpolicies"}
_BY_PATH = {path: kind for kind, (path, _, _) in PATHS.items()}


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


class Cluster:
    """Objects, the resourceVersion counter and the event history (thread-safe)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.rv = 100
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {kind: {} for kind in PATHS}
        self.history: list[tuple[int, str, str, dict[str, Any]]] = []  # (rv, kind, type, object)
        self.compacted = 0  # watches and continue tokens from before this RV get 410
        self.expiry = 0  # bumped by expire(): open watches end with ERROR 410
        self.snapshots: dict[int, dict[str, list[dict[str, Any]]]] = {}
        self.unserved: set[str] = set()  # kinds answering 404 (a CRD not installed)

    def _record(self, kind: str, type_: str, obj: dict[str, Any], silent: bool) -> dict[str, Any]:
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        obj["metadata"].setdefault("creationTimestamp", "2026-11-28T10:00:00Z")
        if type_ == "DELETED":
            self.objects[kind].pop(_key(obj), None)
        else:
            self.objects[kind][_key(obj)] = obj
        if not silent:
            self.history.append((self.rv, kind, type_, obj))
        self.cond.notify_all()
        return obj

    def apply(self, kind: str, obj: dict[str, Any], *, silent: bool = False) -> dict[str, Any]:
        """Create or replace (ADDED / MODIFIED); `silent`: no watch event (lost to compaction)."""
        with self.cond:
            type_ = "MODIFIED" if _key(obj) in self.objects[kind] else "ADDED"
            if type_ == "MODIFIED" and kind in _VERSIONED:
                old = self.objects[kind][_key(obj)]
                if old.get("spec") != obj.get("spec"):
                    obj = {**obj, "metadata": {**obj["metadata"],
                                               "generation": old["metadata"].get("generation", 1) + 1}}
            if kind in _VERSIONED:
                obj["metadata"].setdefault("generation", 1)
            return self._record(kind, type_, obj, silent)

    def delete(self, kind: str, namespace: str, name: str, *, silent: bool = False) -> None:
        with self.cond:
            obj = self.objects[kind][(namespace, name)]
            self._record(kind, "DELETED", obj, silent)

    def expire(self) -> None:
        """Compact: history before now is gone; open watches get ERROR 410 and end."""
        with self.cond:
            self.compacted = self.rv
            self.history.clear()
            self.snapshots.clear()
            self.expiry += 1
            self.cond.notify_all()

    def snapshot(self) -> int:
        with self.cond:
            self.snapshots[self.rv] = {kind: sorted(objs.values(), key=_key) for kind, objs in self.objects.items()}
            return self.rv


class FakeAPIServer:
    def __init__(self, cluster: Cluster | None = None, token: str = "test-token") -> None:
        self.cluster = cluster or Cluster()
        self.token = token
        self.port = 0
        self.requests: list[str] = []  # "GET path?query", for assertions on the client's protocol
        self.bookmark_interval_s = 0.2
        self.max_watch_s: float | None = None  # end every watch after this long (0: at once)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.closing = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.closing = False
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        httpd.daemon_threads = True
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Die: stop accepting and cut every open connection."""
        self.closing = True
        with self.cluster.cond:
            self.cluster.cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._sockets.clear()
        if self._thread is not None:
            self._thread.join(5)

    def write_kubeconfig(self, path: Path) -> Path:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
        }))
        return path

    # -- request handling (called from handler threads) -----------------------------------
    def track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._sockets.add if add else self._sockets.discard)(sock)


def _handler(server: FakeAPIServer) -> type[BaseHTTPRequestHandler]:
    cluster = server.cluster

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def setup(self) -> None:
            super().setup()
            server.track(self.connection, True)

        def finish(self) -> None:
            server.track(self.connection, False)
            with contextlib.suppress(OSError):
                super().finish()

        def _json(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            server.requests.append(f"GET {self.path}")
            if self.headers.get("Authorization") != f"Bearer {server.token}":
                self._json(401, status(401, "Unauthorized", "Unauthorized"))
                return
            url = urlsplit(self.path)
            kind = _BY_PATH.get(url.path)
            if kind is None or kind in cluster.unserved:
                self._json(404, status(404, "NotFound", f"the server could not find {url.path}"))
                return
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if query.get("watch") in ("true", "1", "True"):
                self._watch(kind, query)
            else:
                self._list(kind, query)

        def _list(self, kind: str, query: dict[str, str]) -> None:
            _path, kind_name, api_version = PATHS[kind]
            limit = int(query.get("limit") or 0)
            token = query.get("continue", "")
            if token:
                rv_text, _, offset_text = token.partition(":")
                rv, offset = int(rv_text), int(offset_text)
                with cluster.cond:
                    snap = cluster.snapshots.get(rv)
                if rv < cluster.compacted or snap is None:
                    self._json(410, status(410, "Expired", "The provided continue parameter is too old to display "
                                           "a consistent list result. You can start a new list without the "
                                           "continue parameter."))
                    return
            else:
                rv, offset = cluster.snapshot(), 0
                with cluster.cond:
                    snap = cluster.snapshots[rv]
            items = snap[kind]
            end = offset + limit if limit else len(items)
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if end < len(items):
                meta["continue"] = f"{rv}:{end}"
            self._json(200, {"kind": f"{kind_name}List", "apiVersion": api_version, "metadata": meta,
                             "items": items[offset:end]})

        def _chunk(self, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        def _watch(self, kind: str, query: dict[str, str]) -> None:
            _path, kind_name, api_version = PATHS[kind]
            since = int(query.get("resourceVersion") or 0)
            timeout = float(query.get("timeoutSeconds") or 1800)
            if server.max_watch_s is not None:
                timeout = min(timeout, server.max_watch_s)
            bookmarks = query.get("allowWatchBookmarks") in ("true", "1", "True")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            deadline = time.monotonic() + timeout
            try:
                with cluster.cond:
                    expiry = cluster.expiry
                    too_old = since < cluster.compacted
                if too_old:
                    self._chunk({"type": "ERROR", "object": status(
                        410, "Expired", f"too old resource version: {since} ({cluster.compacted})")})
                else:
                    sent = since
                    next_bookmark = time.monotonic() + server.bookmark_interval_s
                    while not server.closing and time.monotonic() < deadline:
                        with cluster.cond:
                            if cluster.expiry != expiry:
                                events = None
                            else:
                                events = [e for e in cluster.history if e[0] > sent and e[1] == kind]
                                if not events:
                                    cluster.cond.wait(0.05)
                                    events = [e for e in cluster.history if e[0] > sent and e[1] == kind]
                            current = cluster.rv
                        if events is None:
                            self._chunk({"type": "ERROR", "object": status(
                                410, "Expired", "too old resource version: the watch cache was compacted")})
                            break
                        for rv, _kind, type_, obj in events:
                            self._chunk({"type": type_, "object": {"kind": kind_name, "apiVersion": api_version,
                                                                   **obj}})
                            sent = rv
                        if bookmarks and time.monotonic() >= next_bookmark:
                            self._chunk({"type": "BOOKMARK", "object": {
                                "kind": kind_name, "apiVersion": api_version,
                                "metadata": {"resourceVersion": str(max(sent, current))}}})
                            sent = max(sent, current)
                            next_bookmark = time.monotonic() + server.bookmark_interval_s
                if server.closing:
                    return  # dying: cut the stream without the closing chunk
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            self.close_connection = True

    return Handler
