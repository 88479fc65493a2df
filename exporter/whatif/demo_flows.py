"""One minute of the bundled demo's Hubble flows as a file, to try `suggest` and `whatif` without a cluster.

    python -m exporter.whatif.demo_flows > flows.jsonl

The lines are those `netpol-exporter demo` replays (exporter/service/demo_traffic.py: the seed's
Temporal topology under its zero-trust policies), stamped from 2026-12-04T16:00:00Z.
"""

from __future__ import annotations

import argparse
import sys

from exporter.service.demo_traffic import schedule

START_NS = 1_796_400_000 * 1_000_000_000  # 2026-12-04T16:00:00Z


def lines() -> list[bytes]:
    return [build(START_NS + int(offset * 1e9)) for offset, build in schedule()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.whatif.demo_flows", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    sys.stdout.buffer.write(b"\n".join(lines()) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
