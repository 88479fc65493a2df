"""Start the real things the live dashboard test needs: `netpol-exporter demo` and a Prometheus
(Debian's binary) scraping it every second with the project's rule files loaded."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SCRAPE_JOB = "netpol-exporter"  # the job the recording rules select
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(what: str, check: Any, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


@contextlib.contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, stopped (terminate, then kill) when the block ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@dataclass
class Prometheus:
    url: str

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """GET /api/v1/<path>; returns the JSON body whatever the status (errors carry `error`)."""
        query = urllib.parse.urlencode(params, doseq=True)
        _, body = http_get(f"{self.url}/api/v1/{path}?{query}")
        return dict(json.loads(body))

    def query(self, expr: str, at: float | None = None) -> dict[str, Any]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)

    def query_range(self, expr: str, start: float, end: float, step: str) -> dict[str, Any]:
        return self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)


def exporter_command(listen: str, seconds: int) -> list[str]:
    exe = shutil.which("netpol-exporter", path=str(Path(sys.executable).parent)) or "netpol-exporter"
    # 4x speed: the minute-long loop of the demo every 15 s; --duration bounds a leaked process.
    return [exe, "demo", "--listen", listen, "--speed", "4", "--duration", str(seconds)]


@contextlib.contextmanager
def demo_stack(workdir: Path, rule_files: list[Path], demo_seconds: int = 600) -> Iterator[Prometheus]:
    """The exporter's demo (exits after `demo_seconds`) and a Prometheus scraping it every second with
    `rule_files` evaluated every second."""
    prometheus_bin = shutil.which("prometheus")
    if prometheus_bin is None:
        raise FileNotFoundError("prometheus is not installed (bash scripts/install-test-deps.sh)")
    exporter_addr = f"127.0.0.1:{free_port()}"
    with process(exporter_command(exporter_addr, demo_seconds), workdir / "exporter.log") as exporter:
        wait_for("netpol-exporter demo", lambda: http_get(f"http://{exporter_addr}/metrics")[0] == 200,
                 STARTUP_TIMEOUT, exporter, workdir / "exporter.log")
        prom_addr = f"127.0.0.1:{free_port()}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": SCRAPE_JOB, "static_configs": [{"targets": [exporter_addr]}]}],
        }
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        args = [prometheus_bin, f"--config.file={config_file}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address={prom_addr}", "--log.level=warn"]
        with process(args, workdir / "prometheus.log") as prom:
            wait_for("prometheus", lambda: http_get(f"http://{prom_addr}/-/ready")[0] == 200,
                     STARTUP_TIMEOUT, prom, workdir / "prometheus.log")
            yield Prometheus(f"http://{prom_addr}")
