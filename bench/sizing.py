"""Sizing: the `hubble-file` DaemonSet's process (`netpol-exporter run`, the shipped config) measured for
CPU per 10k flows/s and memory at the series cap (docs/deploy.md, "Sizing").

    .venv/bin/python bench/sizing.py [--lines 100000] [--series 100000]

CPU: the process counts a day-spread realistic Hubble file of --lines lines, unfiltered and as the
shipped Cilium allowList/fieldMask (deploy/cilium) writes the same traffic (5 times over); the CPU it
used beyond an idle start-up, per flow of the original traffic, is given as millicores per 10k flows/s.
Memory: the process counts --series distinct allowed, dropped and audit series each (every family at the
cap when --series is the cap) with every DROPPED verdict left unpaired (the pairing state full), then
serves one scrape; its peak RSS (VmHWM) and the RSS of an idle process are printed.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from flowgen import DAY_SECONDS, HubbleGenerator, encode, filtered_lines  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        return str(response.read().decode())


def proc_cpu(pid: int) -> float:
    return sum(int(x) for x in Path(f"/proc/{pid}/stat").read_text().split()[13:15]) / os.sysconf("SC_CLK_TCK")


def proc_kib(pid: int, field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))  # type: ignore[union-attr]


def run_until_read(path: Path, lines: int, work: Path, timeout: float = 600) -> tuple[float, int, int, float]:
    """(CPU seconds, peak RSS KiB, RSS KiB after one scrape, scrape seconds) of `run` once it has read `lines`."""
    state = Path(tempfile.mkdtemp(prefix=f"state-{path.name}-", dir=work))
    port = free_port()
    command = [sys.executable, "-m", "exporter", "run", f"--config={REPO / 'deploy/exporter/base/config.yaml'}",
               f"--source=hubble-file:{path}", f"--listen=127.0.0.1:{port}", f"--state-dir={state}",
               "--no-kubernetes"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                               env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        started, read = time.monotonic(), -1.0
        while time.monotonic() - started < timeout and read < lines:
            time.sleep(0.5)
            try:
                body = scrape(port)
            except OSError:
                continue
            match = re.search(r"netpol_exporter_events_read_total\{[^}]*\} (\S+)", body)
            read = float(match.group(1)) if match else (0.0 if lines == 0 else -1.0)
        if read < lines:
            raise SystemExit(f"{path}: only {read:.0f} of {lines} lines read in {timeout:.0f} s")
        cpu = proc_cpu(process.pid)
        t0 = time.monotonic()
        scrape(port)
        scrape_s = time.monotonic() - t0
        return cpu, proc_kib(process.pid, "VmHWM"), proc_kib(process.pid, "VmRSS"), scrape_s
    finally:
        process.terminate()
        process.wait(timeout=30)


_SERIES_LINE = (b'{"flow":{"time":"2024-05-01T10:%(m)02d:%(s)02d.%(ns)09dZ","verdict":"%(verdict)s",%(reason)s'
                b'"IP":{"source":"10.%(a)d.%(b)d.%(c)d","destination":"10.200.%(b)d.%(c)d","ipVersion":"IPv4"},'
                b'"l4":{"TCP":{"source_port":%(sport)d,"destination_port":%(dport)d}},'
                b'"source":{"identity":%(id)d,"namespace":"ns-%(nsi)d","labels":["k8s:app=client-%(i)d"],'
                b'"pod_name":"client-%(i)d-7d9f8b6c5d-x2x4z","workloads":[{"name":"client-%(i)d","kind":"Deployment"}]},'
                b'"destination":{"identity":5678,"namespace":"shop","labels":["k8s:app=web"],'
                b'"pod_name":"web-7d9f8b6c5d-x2x4z","workloads":[{"name":"web","kind":"Deployment"}]},'
                b'"node_name":"prod/worker-1","event_type":{"type":5},"traffic_direction":"INGRESS",'
                b'"is_reply":false,"%(list)s":[{"name":"policy-%(p)d","namespace":"shop"}]},'
                b'"node_name":"prod/worker-1","time":"2024-05-01T10:%(m)02d:%(s)02d.%(ns)09dZ"}\n')


def write_series_file(path: Path, series: int, spread_seconds: int = 1) -> None:
    """`series` distinct label sets in each of allowed, dropped and audit; DROPPED verdicts without drop twins,
    all within `spread_seconds` (1: none is old enough to be pruned, the pairing state is full)."""
    step = spread_seconds * 1_000_000_000 // max(series, 1)
    with path.open("wb") as out:
        for i in range(series):
            base = {b"a": (i >> 16) & 255, b"b": (i >> 8) & 255, b"c": i & 255, b"sport": 30000 + i % 30000,
                    b"dport": 1000 + i % 50, b"id": 100000 + i, b"nsi": i % 40, b"i": i, b"p": i % 300,
                    b"m": i * step // 60_000_000_000, b"s": i * step // 1_000_000_000 % 60,
                    b"ns": i * step % 1_000_000_000}
            for verdict, reason, listed in ((b"FORWARDED", b"", b"ingress_allowed_by"),
                                            (b"DROPPED", b'"drop_reason_desc":"POLICY_DENIED",', b"ingress_denied_by"),
                                            (b"AUDIT", b"", b"ingress_denied_by")):
                out.write(_SERIES_LINE % {**base, b"verdict": verdict, b"reason": reason, b"list": listed})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000, help="day-mix lines for the CPU figure")
    ap.add_argument("--series", type=int, default=100_000, help="series per family for the memory figure")
    ap.add_argument("--spread", type=int, default=1, choices=range(1, 3600), metavar="SECONDS",
                    help="the series file's time span: 1 keeps the pairing state full, 60+ lets it be pruned")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="netpol-sizing-") as tmp:
        work = Path(tmp)
        empty = work / "empty.log"
        empty.write_bytes(b"")
        objects = HubbleGenerator().objects(args.lines, DAY_SECONDS)
        full, filtered = work / "day.log", work / "day-filtered.log"
        full.write_bytes(b"\n".join(encode(objects)) + b"\n")
        kept = filtered_lines(objects)
        copies = 5  # the filtered file holds the same traffic 5 times over: enough CPU to measure
        filtered.write_bytes((b"\n".join(kept) + b"\n") * copies)
        del objects
        idle_cpu, _idle_peak, idle_rss, _ = run_until_read(empty, 0, work)
        for name, path, n, flows in (("unfiltered", full, args.lines, args.lines),
                                     ("filtered at the source", filtered, copies * len(kept), copies * args.lines)):
            cpu = min(run_until_read(path, n, work)[0] for _ in range(2))  # best of two: the machine is shared
            per_flow = (cpu - idle_cpu) / flows  # per line of the original, unfiltered traffic
            print(f"CPU, {name} ({n} lines for {flows} flows): {cpu - idle_cpu:.2f} s beyond start-up = "
                  f"{per_flow * 10_000 * 1000:.0f} millicores per 10k flows/s")
        series_file = work / "series.log"
        write_series_file(series_file, args.series, args.spread)
        cpu, peak, rss, scrape_s = run_until_read(series_file, 3 * args.series, work)
        per_100k = (peak - idle_rss) / 1024 / (3 * args.series / 100_000)
        pairing = (f"pairing state full ({args.series} unpaired DROPPED verdicts)" if args.spread == 1 else
                   f"verdicts over {args.spread} s, the pairing state pruned")
        print(f"memory, {args.series} series in each of 3 families, {pairing}: peak RSS {peak / 1024:.0f} MiB "
              f"(idle process {idle_rss / 1024:.0f} MiB; {per_100k:.0f} MiB per 100k series above it), "
              f"{rss / 1024:.0f} MiB after a scrape of {scrape_s:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
