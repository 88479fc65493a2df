"""whatif's rate against `once` on the same Hubble lines, both as whole processes.

    .venv/bin/python bench/whatif_rate.py [--lines 200000] [--repeat 3]

Writes the day-spread lines of bench/flowgen.py's HubbleGenerator (a real agent stream's mix over 24
hours: mostly trace events, policy verdicts, drops, replies) to a file, then runs `netpol-exporter once
--jobs 1` and `netpol-exporter whatif --policies deploy/network-policies/base` (the seed's policies as the
proposal) on it in turn, --repeat times. Prints each command's best CPU time (user + system of the child,
so other load on the machine skews less), its rate in lines per CPU second, its peak RSS, and whatif / once;
then the same without start-up (each command's best on an empty file subtracted). bench/run.py prints
both ratios in its `whatif` section.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from flowgen import DAY_SECONDS, HubbleGenerator  # noqa: E402

CLI = [sys.executable, "-m", "exporter"]
PROPOSAL = ROOT / "deploy" / "network-policies" / "base"


def run(argv: list[str]) -> tuple[float, int, int]:
    """CPU seconds, peak RSS (KiB) and exit code of one child process."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode


def generate(path: Path, lines: int) -> None:
    """The day mix written by a child: a forked command would otherwise start with this process's memory."""
    subprocess.run([sys.executable, __file__, "--generate", str(path), "--lines", str(lines)], check=True)


def commands(flows: Path) -> dict[str, list[str]]:
    return {
        "once": [*CLI, "once", "--no-kubernetes", "--jobs", "1", "--format", "hubble", str(flows)],
        "whatif": [*CLI, "whatif", "--format", "hubble", "--policies", str(PROPOSAL), str(flows)],
    }


def best_runs(argvs: dict[str, list[str]], repeat: int) -> dict[str, tuple[float, int]]:
    """Best CPU seconds of each command (and that run's peak RSS in KiB), run in turn `repeat` times.
    Exit 1 is whatif's "something breaks"; any other failure raises."""
    best = {name: (float("inf"), 0) for name in argvs}
    for _ in range(repeat):
        for name, argv in argvs.items():
            cpu, rss, code = run(argv)
            if code not in (0, 1):
                raise RuntimeError(f"{name} exited {code}: {' '.join(argv)}")
            if cpu < best[name][0]:
                best[name] = (cpu, rss)
    return best


def ratios(flows: Path, empty: Path, repeat: int) -> tuple[dict[str, tuple[float, int]], float, float]:
    """Best runs on `flows`, whatif / once as whole processes, and without start-up (the runs on `empty`)."""
    best = best_runs(commands(flows), repeat)
    start = best_runs(commands(empty), repeat)
    (once, _), (whatif, _) = best["once"], best["whatif"]
    return best, once / whatif, (once - start["once"][0]) / (whatif - start["whatif"][0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--generate", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:  # streamed in chunks: a million lines do not have to fit in memory
        generator = HubbleGenerator()
        with open(args.generate, "wb") as out:  # each chunk spread over its share of the day
            for start in range(0, args.lines, 50_000):
                n = min(50_000, args.lines - start)
                out.write(b"\n".join(generator.lines(n, DAY_SECONDS * n / args.lines)) + b"\n")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        flows, empty = Path(tmp) / "hubble.jsonl", Path(tmp) / "empty.jsonl"
        generate(flows, args.lines)
        empty.write_bytes(b"")
        try:
            best, ratio, without_start = ratios(flows, empty, args.repeat)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 2
    print(f"{args.lines} Hubble lines (day mix), best of {args.repeat}, CPU time of each process:")
    for name, (cpu, rss) in best.items():
        print(f"  {name:7s} {cpu:6.2f} s  {args.lines / cpu / 1000:6.1f} k lines/s  peak RSS {rss / 1024:5.0f} MiB")
    print(f"  whatif / once rate: {ratio:.2f}x (target >= 0.8); without start-up: {without_start:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
