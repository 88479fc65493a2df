#!/usr/bin/env python3
"""Measure the exporter's memory and CPU for a number of flow lines and live series.

The figures behind the requests and limits in the overlays (docs/deploy.md, "Configure"). Runs the
`hubble-file` shape's command (`netpol-exporter run --source hubble-file:...`, the shipped config) on
a generated Hubble export file, waits until every line is read, then prints resident memory, CPU
seconds, live series and the duration of one scrape.

    .venv/bin/python deploy/exporter/measure_footprint.py --lines 200000 --series 2000
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.core.flows import hubble_line  # noqa: E402 - the repository's real-shaped line builder


def write_flows(path: Path, lines: int, series: int, seed: int = 1) -> None:
    """One third DROPPED verdicts, the rest allowed, spread over `series` destinations."""
    rnd = random.Random(seed)
    with path.open("wb") as out:
        for index in range(lines):
            k = rnd.randrange(series)
            dst = {"ID": 2, "identity": 5678, "namespace": f"ns{k % 50}", "labels": [f"k8s:app=app{k}"],
                   "pod_name": f"app{k}-7d9f8b6c5d-x2x4z"}
            l4 = {"TCP": {"source_port": 40000, "destination_port": 1000 + k % 200}}
            if index % 3 == 0:
                out.write(hubble_line(verdict="DROPPED", reason="POLICY_DENIED", dst=dst, l4=l4) + b"\n")
            else:
                allowed_by = [{"name": f"p{k % 30}", "namespace": f"ns{k % 50}"}]
                out.write(hubble_line(dst=dst, l4=l4, ingress_allowed_by=allowed_by) + b"\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--series", type=int, default=2_000, help="distinct destinations (about 2 series each)")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        flows = work / "events.log"
        write_flows(flows, args.lines, args.series)
        (work / "state").mkdir()
        port = free_port()
        command = [sys.executable, "-m", "exporter", "run", f"--config={REPO / 'deploy/exporter/base/config.yaml'}",
                   f"--source=hubble-file:{flows}", f"--listen=127.0.0.1:{port}", f"--state-dir={work / 'state'}",
                   "--no-kubernetes"]
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        try:
            body, read = "", 0.0
            while time.monotonic() - started < args.timeout and read < args.lines:
                time.sleep(0.5)
                try:
                    body = scrape(f"http://127.0.0.1:{port}/metrics")
                except OSError:
                    continue
                match = re.search(r"netpol_exporter_events_read_total\{[^}]*\} (\S+)", body)
                read = float(match.group(1)) if match else 0.0
            elapsed = time.monotonic() - started
            status = Path(f"/proc/{process.pid}/status").read_text()
            rss_kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            ticks = sum(int(x) for x in Path(f"/proc/{process.pid}/stat").read_text().split()[13:15])
            cpu = ticks / os.sysconf("SC_CLK_TCK")
            scrape_started = time.monotonic()
            scrape(f"http://127.0.0.1:{port}/metrics")
            scrape_s = time.monotonic() - scrape_started
        finally:
            process.terminate()
            process.wait(timeout=15)
    series = dict(re.findall(r'netpol_exporter_series\{family="(\w+)"\} (\S+)', body))
    live = sum(float(v) for v in series.values())
    print(f"lines={args.lines} read={read:.0f} file={flows.name} wall={elapsed:.1f}s cpu={cpu:.1f}s "
          f"lines_per_cpu_second={args.lines / max(cpu, 1e-9):.0f} rss={rss_kib / 1024:.0f}MiB "
          f"live_series={live:.0f} scrape={scrape_s * 1000:.0f}ms")
    return 0 if read >= args.lines else 1


if __name__ == "__main__":
    sys.exit(main())
