"""A real subprocess, a real SIGTERM: stop reading, flush checkpoints, exit 0; a restart resumes exactly."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.service.helpers import hubble_line
from tests.service.procs import Exporter, poll, sample


def _allowed(port: int, n: int, start: int) -> list[bytes]:
    return [hubble_line(5, "FORWARDED", policies=["db/allow-app"], port=port, sport=start + i,
                        t=f"2026-11-28T10:00:{i % 60:02d}Z") for i in range(n)]


def _append(path: Path, lines: list[bytes]) -> None:
    with path.open("ab") as f:
        f.write(b"".join(line + b"\n" for line in lines))


SERIES = {"policy": "db/allow-app", "direction": "ingress", "source": "app/client", "source_namespace": "app",
          "destination": "db/server", "destination_namespace": "db", "protocol": "TCP"}


def test_sigterm_flushes_checkpoint_and_restart_resumes(tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    state = tmp_path / "state"
    _append(log, _allowed(8080, 5, 40000))
    spec = f"hubble-file:{log}"
    args = ["run", "--source", spec, "--state-dir", str(state), "--listen", "127.0.0.1:0", "--no-kubernetes"]

    first = Exporter(args)
    poll(lambda: sample(first.get("/metrics"), "networkpolicy_allowed_packets_total",
                        **SERIES, destination_port="8080") == 5)
    _append(log, _allowed(8080, 3, 41000))
    poll(lambda: sample(first.get("/metrics"), "networkpolicy_allowed_packets_total",
                        **SERIES, destination_port="8080") == 8)
    started = time.monotonic()
    first.proc.send_signal(signal.SIGTERM)
    assert first.wait_exit(10) == 0
    assert time.monotonic() - started < 5
    messages = [entry["msg"] for entry in first.logs]
    assert "signal received; stopping" in messages and messages[-1] == "stopped"

    _append(log, _allowed(9090, 4, 42000))  # written while the exporter is down
    second = Exporter(args)
    try:
        poll(lambda: sample(second.get("/metrics"), "networkpolicy_allowed_packets_total",
                            **SERIES, destination_port="9090") == 4)
        text = second.get("/metrics")
        # nothing counted twice: the 8 lines read before the restart are not read again
        assert sample(text, "networkpolicy_allowed_packets_total", **SERIES, destination_port="8080") is None
        assert sample(text, "netpol_exporter_events_read_total", source=spec) == 4
    finally:
        second.proc.send_signal(signal.SIGINT)
        assert second.wait_exit(10) == 0


def test_demo_sigterm_exits_0_quickly() -> None:
    demo = Exporter(["demo", "--listen", "127.0.0.1:0", "--speed", "5"])
    poll(lambda: (sample(demo.get("/metrics"), "netpol_exporter_events_read_total", source="demo:temporal") or 0) > 0)
    started = time.monotonic()
    demo.proc.send_signal(signal.SIGTERM)
    assert demo.wait_exit(10) == 0
    assert time.monotonic() - started < 5


def test_run_without_sources_exits_2() -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "exporter", "run", "--listen", "127.0.0.1:0", "--no-kubernetes"],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "no sources" in proc.stderr


def test_listen_port_in_use_exits_1(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        import subprocess
        import sys

        proc = subprocess.run(
            [sys.executable, "-m", "exporter", "run", "--source", f"hubble-file:{tmp_path / 'x.log'}",
             "--listen", f"127.0.0.1:{port}", "--no-kubernetes", "--log-format", "json"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert '"msg":"cannot listen"' in proc.stderr


@pytest.mark.parametrize("flag", [["--speed", "0"], ["--speed", "fast"], ["--duration", "-1"]])
def test_demo_rejects_bad_numbers(flag: list[str]) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "exporter", "demo", *flag], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert "expected a" in proc.stderr


def test_flags_override_config_and_environment(tmp_path: Path) -> None:
    from_config, from_env, from_flag = (tmp_path / f"{n}.log" for n in ("config", "env", "flag"))
    for path, port in ((from_config, 1111), (from_env, 2222), (from_flag, 3333)):
        _append(path, _allowed(port, 1, 40000))
    config = tmp_path / "config.yaml"
    config.write_text(f"sources: [hubble-file:{from_config}]\nlisten: 127.0.0.1:1\nrecent_denied_flows: 7\n")
    env = {"NETPOL_EXPORTER_SOURCES": f"hubble-file:{from_env}", "NETPOL_EXPORTER_LOG_LEVEL": "debug"}

    exporter = Exporter(["run", "--config", str(config), "--source", f"hubble-file:{from_flag}",
                         "--listen", "127.0.0.1:0", "--no-kubernetes"], env=env)
    try:
        sources = json.loads(poll(lambda: exporter.get("/api/v1/sources")))["sources"]
        assert [s["source"] for s in sources] == [f"hubble-file:{from_flag}"]  # the flag beats env and file
        assert json.loads(exporter.get("/api/v1/denied-flows"))["capacity"] == 7  # the file still applies
        assert any(entry["level"] == "debug" for entry in exporter.logs)  # and the environment
    finally:
        exporter.proc.send_signal(signal.SIGTERM)
        assert exporter.wait_exit(10) == 0
