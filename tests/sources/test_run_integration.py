"""`netpol-exporter run` with every network and file source at once, as a real process: counts scraped
from /metrics, a real SIGTERM, changes while it is down (append, rotation), and an exact resume."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.sources.goldmane_flows import goldmane_flow
from tests.sources.helpers import calico_line
from tests.sources.test_hubble_relay import RECORDING, FlowServer, responses

EXPORTER = [sys.executable, "-m", "exporter"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def scrape(port: int) -> dict[str, float]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session, \
            session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name_labels, _, value = line.rpartition(" ")
            out[name_labels] = float(value)
    return out


def family_total(metrics: dict[str, float], family: str, **labels: str) -> float:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in metrics.items() if k.startswith(family + "{") and all(w in k for w in want))


class Exporter:
    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.args, self.port, self.log = args, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Exporter:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([*EXPORTER, "run", "--no-kubernetes", "--listen",
                                          f"127.0.0.1:{self.port}", *self.args], stdout=out, stderr=out)
        deadline = time.monotonic() + 15
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, self.log.read_text()
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/readyz") as resp:
                        if resp.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"exporter not ready: {self.log.read_text()}")

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.get_running_loop().run_in_executor(None, self.proc.wait, 10)
        assert self.proc.returncode == 0, self.log.read_text()


async def eventually(port: int, check: object, timeout: float = 5.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        metrics = await scrape(port)
        if check(metrics) or time.monotonic() > deadline:  # type: ignore[operator]
            return metrics
        await asyncio.sleep(0.05)


async def test_run_all_sources_sigterm_and_exact_resume(tmp_path: Path) -> None:
    log, state, exporter_log = tmp_path / "flows.log", tmp_path / "state", tmp_path / "exporter.log"
    log.write_bytes(calico_line(3) * 100)
    port, push_port = free_port(), free_port()
    file_spec = f"calico-file:{log}"
    dropped = "networkpolicy_dropped_packets_total"
    async with FlowServer(responses(RECORDING)) as relay:
        args = ["--state-dir", str(state), "--source", file_spec,
                "--source", f"calico-goldmane-push:127.0.0.1:{push_port}",
                "--source", f"hubble-relay:127.0.0.1:{relay.port}"]
        async with Exporter(args, port, exporter_log):
            async with aiohttp.ClientSession() as session, session.post(
                    f"http://127.0.0.1:{push_port}/", data=goldmane_flow(packets_in=40),
                    headers={"Content-Type": "application/x-ndjson"}) as resp:
                assert resp.status == 200
            with open(log, "ab") as out:
                out.write(calico_line(5) * 10)
            m = await eventually(port, lambda m: family_total(m, dropped) >= 393)
            assert family_total(m, dropped, destination="api/api") == 350  # the file: 100 x 3 + 10 x 5
            assert family_total(m, dropped, destination="temporal/temporal-history") == 40  # the push
            assert family_total(m, dropped, destination="temporal/temporal-frontend") == 3  # the relay
            assert m[f'netpol_exporter_hubble_lost_events_total{{source="hubble-relay:127.0.0.1:{relay.port}"}}'] == 17
    # Down: more lines, then a rotation. A restart counts exactly what it did not count before.
    with open(log, "ab") as out:
        out.write(calico_line(7) * 10)
    os.rename(log, tmp_path / "flows.log.1")
    log.write_bytes(calico_line(11) * 20)
    async with Exporter(["--state-dir", str(state), "--source", file_spec], port, exporter_log):
        m = await eventually(port, lambda m: family_total(m, dropped) >= 290)
        await asyncio.sleep(0.3)
        m = await scrape(port)
        assert family_total(m, dropped) == 10 * 7 + 20 * 11
        assert m[f'netpol_exporter_events_read_total{{source="{file_spec}"}}'] == 30
