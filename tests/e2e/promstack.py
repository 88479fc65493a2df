"""Real Prometheus, Alertmanager and netpol-exporter processes for tests, on free 127.0.0.1 ports.

The one Prometheus test fixture of the project (tests/rules, tests/e2e and tests/dashboards use it).

`Launcher(workdir)` starts the processes, each in its own directory under `workdir`, and stops every one
it started by its own pid (`stop()`, or leaving its `with` block); a process's log is attached to a
failure message. Use it directly for a longer-lived (module-scoped) stack:
- `launcher.prometheus(config: dict, rule_files=()) -> Prometheus`
- `launcher.alertmanager(config: dict) -> Alertmanager`
- `launcher.exporter(command, *args) -> Exporter` (`netpol-exporter COMMAND ARGS --listen 127.0.0.1:<port>`)
- `scrape_every_second(job, *targets)`: a prometheus.yml (dict) scraping and evaluating every second.

Function-scoped fixtures (import them into a conftest.py):
- `prometheus_factory(config: dict, rule_files=()) -> Prometheus`
- `alertmanager_factory(config: dict) -> Alertmanager`
- `exporter_factory(*args) -> Exporter` (`netpol-exporter run ARGS --listen 127.0.0.1:<free port>`)
- `webhook_receiver -> WebhookReceiver`: an aiohttp server (own thread) recording Alertmanager's posts;
  `webhook_receivers(config, receiver.url)` points every receiver of an Alertmanager config at it.

`require_tool(name, ...)` finds a binary and `require_module(name)` imports a Python module: a test that
needs a missing one fails under CI (env CI set and not false/0: the test setup,
`scripts/install-test-deps.sh` and the `test` extra, installs them) and skips elsewhere.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, NoReturn

import pytest
import yaml
from aiohttp import web

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
HTTP_TIMEOUT = 5.0


def in_ci() -> bool:
    """Whether the tests run under CI (env CI set to anything but empty, 0 or false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing(message: str) -> NoReturn:
    if in_ci():
        pytest.fail(f"{message} (CI is set: the CI setup must provide it)")
    pytest.skip(message)


def require_tool(*names: str) -> str:
    """The path of the first of `names` on PATH; fail under CI, skip otherwise, when none is."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    _missing(f"{' / '.join(names)} not found on PATH (bash scripts/install-test-deps.sh installs it)")


def require_module(name: str, why: str = "") -> ModuleType:
    """Import the Python module `name`; fail under CI, skip otherwise, when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        _missing(f"Python module {name} is not importable ({exc}); the `test` extra of pyproject.toml "
                 f"installs it{': ' + why if why else ''}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(url: str, data: Any = None, timeout: float = HTTP_TIMEOUT) -> Any:
    """GET (or POST `data` as JSON) and decode the JSON answer. An HTTP error whose body is JSON (the
    Prometheus API answers a bad query with 400 or 422 and `{"status": "error", ...}`) returns that body."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return json.loads(text)
        except ValueError:
            raise exc from None


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.5, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")


class Process:
    """A child process with its output in a log file, stopped by pid."""

    def __init__(self, name: str, argv: Sequence[str], workdir: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir,
                                     start_new_session=True)

    def log(self, tail: int = 4000) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return text[-tail:]

    def check_running(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


class Server:
    """A started HTTP server process at `url`."""

    def __init__(self, process: Process, url: str) -> None:
        self.process = process
        self.url = url

    def wait_ready(self, path: str) -> None:
        def ready() -> bool:
            self.process.check_running()
            with urllib.request.urlopen(self.url + path, timeout=HTTP_TIMEOUT) as response:
                return bool(response.status == 200)

        try:
            wait_until(ready, START_TIMEOUT, 0.2, f"{self.process.name} at {self.url}{path}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.process.log()}") from None


class PrometheusQueryError(ValueError):
    """A query the Prometheus API refused or could not run; the message names the query and the error."""


class Prometheus(Server):
    def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET /api/v1/<path>: the whole JSON answer, error answers included (`status`, `error` ...)."""
        return dict(http_json(f"{self.url}/api/v1/{path}?" + urllib.parse.urlencode(params), timeout=30))

    def _data(self, path: str, expr: str, **params: str) -> Any:
        answer = self.api(path, query=expr, **params)
        if answer.get("status") != "success":
            raise PrometheusQueryError(f"{path} {expr!r}: {answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query (now, or at the Unix time `at`): the result vector
        (`[{"metric": {...}, "value": [ts, "v"]}, ...]`); PrometheusQueryError when it fails."""
        params = {} if at is None else {"time": f"{at:.3f}"}
        return list(self._data("query", expr, **params)["result"])

    def query_range(self, expr: str, start: float, end: float, step: str) -> list[dict[str, Any]]:
        """Range query: the result matrix (`[{"metric": {...}, "values": [[ts, "v"], ...]}, ...]`)."""
        return list(self._data("query_range", expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)["result"])

    def label_values(self, label: str, match: str) -> list[str]:
        """GET /api/v1/label/<label>/values for the series `match` selects."""
        answer = self.api(f"label/{label}/values", **{"match[]": match})
        if answer.get("status") != "success":
            raise PrometheusQueryError(f"label values of {label} for {match!r}: {answer.get('error')}")
        return list(answer["data"])

    def alerts(self) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts."""
        return list(http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"])

    def rule_groups(self) -> list[dict[str, Any]]:
        return list(http_json(f"{self.url}/api/v1/rules")["data"]["groups"])

    def targets_up(self, job: str) -> bool:
        return any(r["value"][1] == "1" for r in self.query(f'up{{job="{job}"}}'))


class Alertmanager(Server):
    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """API v2 alerts (filters: active, silenced, inhibited, unprocessed = "true"/"false")."""
        query = urllib.parse.urlencode(filters)
        return list(http_json(f"{self.url}/api/v2/alerts?{query}"))

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        http_json(f"{self.url}/api/v2/alerts", data=alerts)


class Exporter(Server):
    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=HTTP_TIMEOUT) as response:
            return str(response.read().decode())


def _write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def exporter_binary() -> str:
    """`netpol-exporter` of this virtualenv, else the one on PATH."""
    return shutil.which("netpol-exporter", path=str(Path(sys.executable).parent)) or require_tool("netpol-exporter")


def scrape_every_second(job: str, *targets: Server) -> dict[str, Any]:
    """A prometheus.yml (as a dict) scraping `targets` under `job`, scraping and evaluating rules every
    second."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": job, "static_configs": [
            {"targets": [target.url.split("//", 1)[1] for target in targets]}]}],
    }


class Launcher:
    """Starts servers, each in its own directory under `root`, and stops every one of them by pid."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._started: list[Process] = []

    def _workdir(self, kind: str) -> Path:
        index = sum(1 for p in self._started if p.name == kind)
        workdir = self.root / f"{kind}-{index}"
        workdir.mkdir(parents=True)
        return workdir

    def _start(self, kind: str, workdir: Path, argv: list[str]) -> Process:
        process = Process(kind, argv, workdir)
        self._started.append(process)
        return process

    def prometheus(self, config: dict[str, Any], rule_files: Sequence[Path] = ()) -> Prometheus:
        """Prometheus with `config` (a prometheus.yml as a dict); `rule_files` are copied beside it."""
        binary = require_tool("prometheus")
        workdir = self._workdir("prometheus")
        names = []
        for rule_file in rule_files:
            shutil.copy(rule_file, workdir / rule_file.name)
            names.append(rule_file.name)
        config = {**config, "rule_files": [*config.get("rule_files", []), *names]}
        config_path = _write_yaml(workdir / "prometheus.yml", config)
        port = free_port()
        process = self._start("prometheus", workdir, [
            binary, f"--config.file={config_path}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        ])
        server = Prometheus(process, f"http://127.0.0.1:{port}")
        server.wait_ready("/-/ready")
        return server

    def alertmanager(self, config: dict[str, Any]) -> Alertmanager:
        """A single Alertmanager (clustering off) with `config` (an alertmanager.yml as a dict)."""
        binary = require_tool("alertmanager", "prometheus-alertmanager")
        workdir = self._workdir("alertmanager")
        config_path = _write_yaml(workdir / "alertmanager.yml", config)
        port = free_port()
        process = self._start("alertmanager", workdir, [
            binary, f"--config.file={config_path}", f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn",
        ])
        server = Alertmanager(process, f"http://127.0.0.1:{port}")
        server.wait_ready("/-/ready")
        return server

    def exporter(self, command: str, *args: str) -> Exporter:
        """`netpol-exporter COMMAND ARGS... --listen 127.0.0.1:<free port>` (command: run or demo)."""
        binary = exporter_binary()
        workdir = self._workdir("netpol-exporter")
        port = free_port()
        process = self._start("netpol-exporter", workdir,
                              [binary, command, *args, "--listen", f"127.0.0.1:{port}"])
        server = Exporter(process, f"http://127.0.0.1:{port}")
        server.wait_ready("/metrics")
        return server

    def stop(self) -> None:
        """Stop every started process, the last started first (all of them even if one stop fails)."""
        failures: list[Exception] = []
        while self._started:
            try:
                self._started.pop().stop()
            except (OSError, subprocess.SubprocessError) as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """Start Prometheus with `config` (a prometheus.yml as a dict); `rule_files` are copied beside it."""
    require_tool("prometheus")
    with Launcher(tmp_path) as launcher:
        yield launcher.prometheus


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[Callable[..., Alertmanager]]:
    """Start a single Alertmanager (clustering off) with `config` (an alertmanager.yml as a dict)."""
    require_tool("alertmanager", "prometheus-alertmanager")
    with Launcher(tmp_path) as launcher:
        yield launcher.alertmanager


@pytest.fixture
def exporter_factory(tmp_path: Path) -> Iterator[Callable[..., Exporter]]:
    """Start `netpol-exporter run ARGS... --listen 127.0.0.1:<free port>` from this virtualenv."""
    exporter_binary()
    with Launcher(tmp_path) as launcher:
        yield lambda *args: launcher.exporter("run", *args)


def webhook_receivers(config: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A copy of an Alertmanager config whose every receiver posts to `<base_url>/<receiver name>`
    (routes, inhibitions and timings unchanged); the test's webhook server records what arrives."""
    copy = json.loads(json.dumps(config))
    copy["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": f"{base_url}/{r['name']}", "send_resolved": False}]}
        for r in config["receivers"]
    ]
    return copy


class WebhookReceiver:
    """Records Alertmanager webhook notifications per receiver (the URL path's last segment)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._posts: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-receiver", daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        with self._lock:
            self._posts.setdefault(request.match_info["receiver"], []).append(payload)
        return web.Response(text="ok")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{receiver}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def start(self) -> WebhookReceiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=START_TIMEOUT)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=START_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=START_TIMEOUT)
        self._loop.close()

    def posts(self, receiver: str) -> list[dict[str, Any]]:
        """The webhook payloads (`{"receiver", "status", "alerts": [...], ...}`) `receiver` got so far."""
        with self._lock:
            return list(self._posts.get(receiver, []))

    def alerts(self, receiver: str) -> list[dict[str, Any]]:
        """Every alert of every notification `receiver` got."""
        return [alert for post in self.posts(receiver) for alert in post["alerts"]]

    def receivers(self) -> set[str]:
        with self._lock:
            return set(self._posts)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()
