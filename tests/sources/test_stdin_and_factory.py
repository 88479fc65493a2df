"""stdin sources over a real pipe, and the spec factory."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from exporter.config import Config
from exporter.pipeline import Pipeline
from exporter.sources import make_source
from exporter.sources.stdin import StdinSource
from tests.core.flows import hubble_line
from tests.sources.helpers import calico_line, total, until


async def test_stdin_reads_lines_from_a_pipe_until_eof() -> None:
    read_fd, write_fd = os.pipe()
    pipeline = Pipeline()
    with os.fdopen(read_fd, "rb", buffering=0) as stream:
        source = StdinSource("calico-stdin", pipeline, "calico", stream=stream)  # type: ignore[arg-type]
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(stop))
        os.write(write_fd, calico_line(2) + calico_line(3)[:10])
        await until(lambda: total(pipeline) == 2)
        assert source.status.state == "running"
        os.write(write_fd, calico_line(3)[10:] + b"garbage\n" + calico_line(5).rstrip(b"\n"))
        os.close(write_fd)  # EOF: the last line without newline still counts
        await asyncio.wait_for(task, 3)
    assert total(pipeline) == 10
    assert source.stats.invalid == 1
    assert source.status.state == "stopped" and source.status.detail == "end of input"


async def test_stdin_stops_on_request_while_blocked() -> None:
    read_fd, write_fd = os.pipe()
    pipeline = Pipeline()
    with os.fdopen(read_fd, "rb", buffering=0) as stream:
        source = StdinSource("hubble-stdin", pipeline, "hubble", stream=stream)  # type: ignore[arg-type]
        stop = asyncio.Event()
        task = asyncio.create_task(source.run(stop))
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 3)
        assert source.status.state == "stopped"
    os.close(write_fd)


@pytest.mark.parametrize("spec, kind, fmt", [
    ("hubble-file:/var/run/cilium/hubble/events.log", "FileSource", "hubble"),
    ("calico-file:/var/log/calico/flowlogs/flows.log", "FileSource", "calico"),
    ("hubble-stdin", "StdinSource", "hubble"),
    ("calico-stdin", "StdinSource", "calico"),
    ("hubble-relay:hubble-relay.kube-system.svc:80", "HubbleRelaySource", "hubble-pb"),
    ("hubble-relay:[::1]:4245", "HubbleRelaySource", "hubble-pb"),
    ("calico-goldmane-push:0.0.0.0:10216", "GoldmanePushSource", "goldmane"),
    ("calico-goldmane:goldmane.calico-system.svc:7443", "GoldmaneStreamSource", "goldmane"),
])
def test_factory_builds_each_kind(spec: str, kind: str, fmt: str) -> None:
    source = make_source(spec, Pipeline(), Config())
    assert type(source).__name__ == kind and source.format == fmt and source.spec == spec
    assert source.stats.name == spec


@pytest.mark.parametrize("spec, message", [
    ("kafka:broker:9092", "unknown source 'kafka:broker:9092'"),
    ("hubble-file:", "expected hubble-file:PATH"),
    ("calico-stdin:x", "takes no argument"),
    ("hubble-relay:relay", "expected HOST:PORT"),
    ("hubble-relay:relay:http", "expected HOST:PORT"),
    ("calico-goldmane-push::99999", "expected HOST:PORT"),
])
def test_factory_rejects_bad_specs_clearly(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_source(spec, Pipeline(), Config())


def test_sigterm_while_stdin_is_flowing_exits_cleanly(tmp_path: Path) -> None:
    """A writer that never stops (`yes LINE | netpol-exporter run`): SIGTERM must exit 0, not abort the
    interpreter inside the reader thread's buffered read."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    line = hubble_line(verdict="FORWARDED")
    for _ in range(3):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        writer = subprocess.Popen(["yes", line.decode()], stdout=subprocess.PIPE)
        proc = subprocess.Popen(
            [sys.executable, "-m", "exporter", "run", "--no-kubernetes", "--source", "hubble-stdin",
             "--listen", f"127.0.0.1:{port}"], stdin=writer.stdout, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        assert writer.stdout is not None
        writer.stdout.close()
        time.sleep(2.5)
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)
        finally:
            writer.kill()
            writer.wait()
        assert proc.returncode == 0, err.decode()[-2000:]
