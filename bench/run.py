"""netpol-exporter benchmark: prints figures and ratios measured side by side in one run.

    .venv/bin/python bench/run.py [--lines 200000] [--repeat 3]

Measures, on the same generated lines and in this one process (one core; rates are lines per CPU
second of this process, best of --repeat, so other load on the machine does not skew the ratios):
  - Hubble: the exporter's ingest path (what `once` runs), a naive exporter (stdlib json +
    Counter.labels().inc()), and a bare typed decode (msgspec structs, no counting);
  - Calico: the ingest path on flows.log records;
  - `once` as a whole process on a file (start-up, decode, count, render);
  - 100k live series: render time and the process's peak RSS (in a fresh subprocess).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines import NaiveExporter, bare_typed_decode
from flowgen import HubbleGenerator, calico_lines

from exporter.cli import tune_gc
from exporter.pipeline import Pipeline


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """Best CPU time of this process over `repeat` runs: robust when other processes share the cores."""
    return best_interleaved(repeat, [fn])[0]


def best_interleaved(repeat: int, fns: list[Callable[[], object]],
                     clock: Callable[[], float] = time.process_time) -> list[float]:
    """Best time of each function (CPU time of this process by default), run in turn `repeat` times."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = clock()
            fn()
            best[i] = min(best[i], clock() - start)
    return best


def best_wall(repeat: int, fn: Callable[[], object]) -> float:
    return best_interleaved(repeat, [fn], clock=time.perf_counter)[0]


def ingest_all(fmt: str, lines: list[bytes]) -> Pipeline:
    pipeline = Pipeline()
    stats = pipeline.source("bench", fmt)
    for i in range(0, len(lines), 2000):
        pipeline.ingest(stats, lines[i:i + 2000])
    return pipeline


SERIES_CHILD = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[2])
from exporter.config import Config, SeriesConfig
from exporter.model import Family
from exporter.cli import tune_gc
from exporter.pipeline import Pipeline
n = int(sys.argv[1])
p = Pipeline(Config(series=SeriesConfig(max_per_family=n)))
store = p.stores[Family.DROPPED]
for i in range(n):
    store.add((f"temporal/policy-{i % 300}", "ingress", f"ns-{i % 40}/client-{i}", f"ns-{i % 40}",
               f"temporal/svc-{i % 97}", "temporal", str(1024 + i % 5000), "TCP", "POLICY_DENIED"), 1, 0.0)
t0 = time.perf_counter(); size = sum(map(len, p.iter_render())); t1 = time.perf_counter()
size = sum(map(len, p.iter_render())); t2 = time.perf_counter()
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(len(store), t1 - t0, t2 - t1, size, int(hwm.split()[1]))
"""


def series_figures(n: int) -> tuple[int, float, float, int, int]:
    repo = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", SERIES_CHILD, str(n), repo], capture_output=True, text=True,
                         check=True).stdout.split()
    base = subprocess.run([sys.executable, "-c", SERIES_CHILD, "1", repo], capture_output=True, text=True,
                          check=True).stdout.split()
    return int(out[0]), float(out[1]), float(out[2]), int(out[4]), int(base[4])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--calico", type=int, default=100_000)
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    tune_gc()  # as the `netpol-exporter` command does

    clines = calico_lines(args.calico)
    t_calico = best_of(args.repeat, lambda: ingest_all("calico", clines))
    print(f"calico exporter ingest : {len(clines) / t_calico:>10,.0f} records/s "
          f"({sum(map(len, clines)) / len(clines):.0f} bytes/record)")

    gc.collect()

    lines = HubbleGenerator().lines(args.lines)
    kinds: dict[str, int] = {}
    for line in lines:
        obj = json.loads(line)
        kind = "lost_events" if "lost_events" in obj else f"type {obj['flow']['event_type']['type']}"
        kinds[kind] = kinds.get(kind, 0) + 1
    avg = sum(map(len, lines)) / len(lines)
    print(f"hubble input: {len(lines)} lines, {avg:.0f} bytes/line, mix {dict(sorted(kinds.items()))}")

    # interleaved (ours, naive, typed, ours, ...): a drift in the machine's speed hits all three alike
    t_ours, t_naive, t_typed = best_interleaved(args.repeat, [
        lambda: ingest_all("hubble", lines), lambda: NaiveExporter().ingest(lines),
        lambda: bare_typed_decode(lines)])
    rate = len(lines) / t_ours
    print(f"hubble exporter ingest : {rate:>10,.0f} lines/s")
    print(f"hubble naive baseline  : {len(lines) / t_naive:>10,.0f} lines/s   exporter/naive = {t_naive / t_ours:.2f}x")
    print(f"hubble bare typed decode: {len(lines) / t_typed:>9,.0f} lines/s   exporter/typed-decode = "
          f"{t_typed / t_ours:.2f}x")

    p = ingest_all("hubble", lines)
    naive = NaiveExporter()
    naive.ingest(lines)
    s = p.self_metrics.sources["bench"]
    print(f"  (exporter: read {s.read}, counted {s.counted}, paired drops {s.paired}, lost {s.lost}, invalid "
          f"{s.invalid})")

    with tempfile.NamedTemporaryFile(suffix=".log", delete=False) as f:
        f.write(b"\n".join(lines) + b"\n")
        path = f.name
    try:
        exe = [sys.executable, "-m", "exporter", "once", "--format", "hubble", path]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        t_once = best_wall(args.repeat, lambda: subprocess.run(exe, stdout=subprocess.DEVNULL, check=True, env=env))
        print(f"once (whole process)   : {len(lines) / t_once:>10,.0f} lines/s ({t_once:.2f} s for {len(lines)} "
              "lines incl. start-up and render)")
    finally:
        os.unlink(path)

    n, t_render, t_render2, rss_kb, base_kb = series_figures(args.series)
    print(f"{n} live series        : render {t_render:.3f} s first, {t_render2:.3f} s again; peak RSS "
          f"{rss_kb / 1024:.0f} MiB ({(rss_kb - base_kb) / 1024:.0f} MiB above an empty exporter's "
          f"{base_kb / 1024:.0f})")
    print(f"this process peak RSS  : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
