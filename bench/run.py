"""netpol-exporter benchmark: prints figures and ratios measured side by side in one run.

    .venv/bin/python bench/run.py [--lines 100000] [--repeat 3] [--only calico,hubble,jobs,series,whatif]

Ratios compare runs interleaved in one process (best of --repeat; rates are lines per CPU second of this
process, so other load on the shared cores skews them less):
  - calico: the exporter's ingest path vs bench/floor_calico.py, a one-file msgspec script of the contract;
  - hubble: on a day-spread realistic mix, the ingest path vs bench/floor_hubble.py (the floor) and a naive
    exporter; `once --jobs 1` and the floor script as whole processes (CPU, start-up shown apart);
    field-masked lines, lines filtered at the source by the shipped allowList/fieldMask (deploy/cilium),
    aggregated exporter lines, and the earlier dense mix;
  - jobs: `once` on 8 files, wall time of --jobs <cores> vs --jobs 1;
  - series: 100k live series, render time and peak RSS (in a fresh subprocess); then the same 100k series
    plus a full pairing state (bench/pairing_memory.py, a fresh subprocess);
  - whatif: `whatif` with the seed's policies vs `once --jobs 1` on the same day-mix file, whole processes'
    CPU (bench/whatif_rate.py).
Counts are checked against the floor scripts' ("identical").
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import floor_calico
import floor_hubble
from baselines import NaiveExporter, bare_typed_decode
from flowgen import DAY_SECONDS, HubbleGenerator, calico_lines, encode, filtered_lines, mask_fields

from exporter.cli import tune_gc
from exporter.commands.jobs import default_jobs
from exporter.pipeline import Pipeline

BENCH = Path(__file__).resolve().parent
REPO = str(BENCH.parent)


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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(cmd: list[str]) -> float:
    """CPU seconds (user + system) of one run of a command and the processes it waited for."""
    env = dict(os.environ, PYTHONPATH=REPO)
    before = children_cpu()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    return children_cpu() - before


def best_of_cpu(repeat: int, commands: list[list[str]]) -> list[float]:
    """Best process CPU time of each command, run in turn `repeat` times."""
    best = [float("inf")] * len(commands)
    for _ in range(repeat):
        for i, cmd in enumerate(commands):
            best[i] = min(best[i], process_cpu(cmd))
    return best


def series_of(pipeline: Pipeline) -> dict[str, dict[tuple[str, ...], float]]:
    return {family.name.lower(): {key: entry[0] for key, entry in store.series.items()}
            for family, store in pipeline.stores.items() if store.series}


def same_counts(pipeline: Pipeline, floor: dict[str, dict[tuple[str, ...], int]]) -> str:
    return "identical" if series_of(pipeline) == {k: v for k, v in floor.items() if v} else "DIFFERENT"


def calico_section(args: argparse.Namespace) -> None:
    clines = calico_lines(args.calico)
    t_ours, t_floor = best_interleaved(args.repeat, [lambda: ingest_all("calico", clines),
                                                     lambda: floor_calico.count(clines)])
    print(f"calico ({len(clines)} records, {sum(map(len, clines)) / len(clines):.0f} bytes/record)")
    print(f"  exporter ingest        : {len(clines) / t_ours:>10,.0f} records/s")
    print(f"  one-file floor script  : {len(clines) / t_floor:>10,.0f} records/s   exporter/floor = "
          f"{t_floor / t_ours:.2f}x (target >= 1.0; counts "
          f"{same_counts(ingest_all('calico', clines), floor_calico.count(clines))})")


def write_lines(path: str, lines: list[bytes], copies: int = 1) -> None:
    with open(path, "wb") as f:
        for _ in range(copies):
            f.write(b"\n".join(lines) + b"\n")


def hubble_section(args: argparse.Namespace, tmp: str) -> None:
    objects = HubbleGenerator().objects(args.lines, DAY_SECONDS)
    lines = encode(objects)
    masked = encode([mask_fields(obj) for obj in objects])
    filtered = filtered_lines(objects)
    kinds: dict[str, int] = {}
    for obj in objects:
        kind = "lost_events" if "lost_events" in obj else f"type {obj['flow']['event_type']['type']}"
        kinds[kind] = kinds.get(kind, 0) + 1
    first, last = objects[0]["time"], objects[-1]["time"]
    del objects
    print(f"hubble day mix: {len(lines)} lines from {first} to {last}, {sum(map(len, lines)) / len(lines):.0f} "
          f"bytes/line, mix {dict(sorted(kinds.items()))}")
    # interleaved (ours, floor, naive, ours, ...): a drift in the machine's speed hits all alike
    t_ours, t_floor, t_naive = best_interleaved(args.repeat, [
        lambda: ingest_all("hubble", lines), lambda: floor_hubble.count(lines), lambda: NaiveExporter().ingest(lines)])
    p = ingest_all("hubble", lines)
    s = p.self_metrics.sources["bench"]
    print(f"  exporter ingest        : {len(lines) / t_ours:>10,.0f} lines/s  (read {s.read}, counted {s.counted}, "
          f"paired drops {s.paired}, lost {s.lost}, invalid {s.invalid})")
    print(f"  one-file floor script  : {len(lines) / t_floor:>10,.0f} lines/s   exporter/floor = "
          f"{t_floor / t_ours:.2f}x (target >= 1.0; counts {same_counts(p, floor_hubble.count(lines))})")
    print(f"  naive exporter         : {len(lines) / t_naive:>10,.0f} lines/s   exporter/naive = "
          f"{t_naive / t_ours:.2f}x (target >= 4)")

    day = os.path.join(tmp, "day.log")
    empty = os.path.join(tmp, "empty.log")
    write_lines(day, lines, copies=args.process_copies)
    write_lines(empty, [])
    once = [sys.executable, "-m", "exporter", "once", "--format", "hubble", "--no-kubernetes", "--jobs", "1"]
    floor = [sys.executable, str(BENCH / "floor_hubble.py")]
    c_once, c_floor, c_once0, c_floor0 = best_of_cpu(args.repeat, [[*once, day], [*floor, day], [*once, empty],
                                                                   [*floor, empty]])
    print(f"  once --jobs 1 process on the day mix x{args.process_copies} ({args.process_copies * len(lines)} lines): "
          f"{c_once:.2f} s CPU, floor script process {c_floor:.2f} s: floor/once = "
          f"{c_floor / c_once:.2f}x; start-up alone (empty file) {c_once0:.2f} s vs {c_floor0:.2f} s; "
          f"without start-up {(c_floor - c_floor0) / (c_once - c_once0):.2f}x")

    t_plain, t_masked = best_interleaved(args.repeat, [lambda: ingest_all("hubble", lines),
                                                       lambda: ingest_all("hubble", masked)])
    masked_size = sum(map(len, masked)) / len(masked)
    print(f"  field-masked day mix   : {len(masked) / t_masked:>10,.0f} lines/s ({masked_size:.0f} bytes/line; "
          f"counts {same_counts(ingest_all('hubble', masked), floor_hubble.count(lines))})")
    t_filtered = best_of(args.repeat, lambda: ingest_all("hubble", filtered))
    print(f"  filtered at the source (allowList + fieldMask, deploy/cilium): {len(filtered)} lines, "
          f"{t_filtered:.3f} s CPU vs {t_plain:.3f} s unfiltered for the same traffic: {t_plain / t_filtered:.1f}x "
          f"less CPU (counts {same_counts(ingest_all('hubble', filtered), floor_hubble.count(lines))})")

    aggregated = HubbleGenerator(seed=3).aggregated_lines(args.lines // 8)
    t_aggr = best_of(args.repeat, lambda: ingest_all("hubble", aggregated))
    print(f"  aggregated exporter lines (dense mix, 30 s intervals): {len(aggregated) / t_aggr:>10,.0f} lines/s")

    dense = HubbleGenerator().lines(args.lines // 2)
    t_ours, t_naive, t_typed = best_interleaved(args.repeat, [
        lambda: ingest_all("hubble", dense), lambda: NaiveExporter().ingest(dense), lambda: bare_typed_decode(dense)])
    print(f"hubble dense mix (the earlier shape, all within {len(dense) * 32 / 1e6:.0f} s): exporter "
          f"{len(dense) / t_ours:,.0f} lines/s, exporter/naive = {t_naive / t_ours:.2f}x, exporter/typed-decode = "
          f"{t_typed / t_ours:.2f}x")


def jobs_section(args: argparse.Namespace, tmp: str) -> None:
    base = HubbleGenerator(seed=5).day_lines(args.lines // 4)
    paths = []
    for i in range(8):
        path = os.path.join(tmp, f"node-{i}.log")
        write_lines(path, base[i * 1000:] + base[:i * 1000], copies=args.jobs_copies)
        paths.append(path)
    once = [sys.executable, "-m", "exporter", "once", "--format", "hubble", "--no-kubernetes"]
    env = dict(os.environ, PYTHONPATH=REPO)
    cores = default_jobs()
    # best wall time of each, run in turn; with the cores it got (CPU / wall) in that best run; and the
    # ratio of each pair of neighbouring runs (its median moves less when the host's load drifts)
    best = {1: (float("inf"), 0.0), cores: (float("inf"), 0.0)}
    pair_ratios = []
    for _ in range(args.repeat):
        walls = {}
        for jobs in best:
            cpu0, wall0 = children_cpu(), time.perf_counter()
            subprocess.run([*once, "--jobs", str(jobs), *paths], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True, env=env)
            wall, cpu = time.perf_counter() - wall0, children_cpu() - cpu0
            walls[jobs] = wall
            if wall < best[jobs][0]:
                best[jobs] = (wall, cpu / wall)
        pair_ratios.append(walls[1] / walls[cores])
    (w1, c1), (wn, cn) = best[1], best[cores]
    print(f"once on 8 files ({8 * len(base) * args.jobs_copies} lines): --jobs 1 {w1:.2f} s ({c1:.1f} cores busy), "
          f"--jobs {cores} {wn:.2f} s ({cn:.1f} cores busy) wall: {w1 / wn:.2f}x (target >= 1.7 with 2 cores; "
          f"median of {len(pair_ratios)} pairs {statistics.median(pair_ratios):.2f}x)")


def series_section(args: argparse.Namespace) -> None:
    n, t_render, t_render2, rss_kb, base_kb = series_figures(args.series)
    print(f"{n} live series        : render {t_render:.3f} s first, {t_render2:.3f} s again; peak RSS "
          f"{rss_kb / 1024:.0f} MiB ({(rss_kb - base_kb) / 1024:.0f} MiB above an empty exporter's "
          f"{base_kb / 1024:.0f})")


def whatif_section(args: argparse.Namespace) -> None:
    """bench/whatif_rate.py in a fresh process: a child forked from this one (hundreds of MiB of generated
    lines) would have this process's memory counted in its peak RSS."""
    n = args.lines * args.process_copies
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("whatif_rate.py")), "--lines", str(n),
                          "--repeat", str(args.repeat)], capture_output=True, text=True, check=True).stdout
    print("whatif --policies deploy/network-policies/base vs once --jobs 1 (bench/whatif_rate.py):")
    for line in out.splitlines():
        print(f"  {line}")


def pairing_section() -> None:
    """RSS at 100k series plus a full pairing state (issue 15 item 6), in a fresh process."""
    out = subprocess.run([sys.executable, str(Path(__file__).with_name("pairing_memory.py"))], capture_output=True,
                         text=True, check=True).stdout
    print("pairing state at its bound (bench/pairing_memory.py):")
    for line in out.splitlines():
        print(f"  {line}")


SECTIONS = ("calico", "hubble", "jobs", "series", "whatif")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000, help="Hubble day-mix lines")
    ap.add_argument("--calico", type=int, default=100_000)
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--process-copies", type=int, default=3,
                    help="the file the whole processes count holds the day mix this many times")
    ap.add_argument("--jobs-copies", type=int, default=4, help="each of the 8 files holds the lines this many times")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    args = ap.parse_args()
    tune_gc()  # as the `netpol-exporter` command does
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="netpol-bench-") as tmp:
        if "calico" in only:
            calico_section(args)
            gc.collect()
        if "hubble" in only:
            hubble_section(args, tmp)
            gc.collect()
        if "jobs" in only:
            jobs_section(args, tmp)
        if "series" in only:
            series_section(args)
            pairing_section()
        if "whatif" in only:
            whatif_section(args)
    print(f"this process peak RSS  : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
