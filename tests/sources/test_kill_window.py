"""After a SIGKILL, at most one checkpoint interval of lines is counted twice: measured on a real
exporter process following a file that is being written (bounded: ~3 s of writing, 2 processes)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.service.procs import Exporter, poll, sample
from tests.sources.helpers import calico_line

INTERVAL = 1.0  # file.checkpoint_interval_seconds for the test
RATE = 1000  # lines per second written
SECONDS = 3.5  # not a multiple of INTERVAL: the kill lands between two periodic checkpoints


def counted(exporter: Exporter, spec: str) -> float:
    return sample(exporter.get("/metrics"), "netpol_exporter_events_counted_total", source=spec) or 0.0


def test_sigkill_counts_at_most_one_checkpoint_interval_twice(tmp_path: Path) -> None:
    log, state = tmp_path / "flows.log", tmp_path / "state"
    log.write_bytes(b"")
    spec = f"calico-file:{log}"
    env = {"NETPOL_EXPORTER_FILE__CHECKPOINT_INTERVAL_SECONDS": str(INTERVAL)}
    args = ["run", "--source", spec, "--state-dir", str(state), "--listen", "127.0.0.1:0", "--no-kubernetes"]
    first = Exporter(args, env=env)
    written = 0
    line = calico_line(1)
    try:
        started = time.monotonic()
        with open(log, "ab", buffering=0) as out:
            while time.monotonic() - started < SECONDS:
                out.write(line * (RATE // 20))
                written += RATE // 20
                time.sleep(0.05)
        poll(lambda: counted(first, spec) == written or None, timeout=20, interval=0.01)
        first.proc.send_signal(signal.SIGKILL)  # no shutdown checkpoint
        first.wait_exit(10)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    saved_line = json.loads(next(state.iterdir()).read_text())["line"]
    second = Exporter(args, env=env)
    try:
        poll(lambda: counted(second, spec) >= written - saved_line or None)
        time.sleep(0.5)  # anything more would show now
        doubled = counted(second, spec)
    finally:
        second.proc.send_signal(signal.SIGTERM)
        second.wait_exit(10)
    # Counted twice: what the first process read after its last periodic checkpoint.
    print(f"SIGKILL window: {doubled:.0f} lines counted twice of {written} written at {RATE}/s, "
          f"checkpoint interval {INTERVAL} s")
    assert doubled == written - saved_line  # exactly the lines after the last checkpoint
    assert doubled <= RATE * INTERVAL * 1.5, doubled
