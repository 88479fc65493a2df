"""One minute of the bundled demo's Hubble flows as a file, to try `suggest` and `whatif` without a cluster.

    python -m exporter.whatif.demo_flows [--plain-namespaces] > flows.jsonl

The lines are those `netpol-exporter demo` replays (exporter/service/demo_traffic.py: the seed's
Temporal topology under its zero-trust policies), stamped from 2026-12-04T16:00:00Z.
`--plain-namespaces` drops the `name=<namespace>` labels the demo puts on every namespace, so the
namespaces carry only what Kubernetes sets (`kubernetes.io/metadata.name`).
"""

from __future__ import annotations

import argparse
import re
import sys

from exporter.service.demo_traffic import schedule

START_NS = 1_796_400_000 * 1_000_000_000  # 2026-12-04T16:00:00Z
_NAME_LABEL = re.compile(rb'"k8s:io\.cilium\.k8s\.namespace\.labels\.name=[^"]*",')


def lines(plain_namespaces: bool = False) -> list[bytes]:
    out = [build(START_NS + int(offset * 1e9)) for offset, build in schedule()]
    return [_NAME_LABEL.sub(b"", line) for line in out] if plain_namespaces else out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.whatif.demo_flows", description=__doc__.splitlines()[0])
    parser.add_argument("--plain-namespaces", action="store_true",
                        help="namespaces carry only kubernetes.io/metadata.name (no name=<namespace> label)")
    args = parser.parse_args(argv)
    sys.stdout.buffer.write(b"\n".join(lines(args.plain_namespaces)) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
