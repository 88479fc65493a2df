"""Each overlay's container command runs for real: the exporter starts with the manifest's own args and
the shipped config, serves /healthz, /readyz and /metrics, and counts a flow from its source.

The pod's volumes become temporary directories (same layout), listen addresses become free ports on
127.0.0.1, and Kubernetes is switched off (--no-kubernetes): everything else is as deployed.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.core.flows import calico_line, hubble_line
from tests.deploy.manifests import NODE_FILE_READERS, REPO, Obj, Rendered, arg_value, containers, pod_spec

START_TIMEOUT_S = 30
COUNT_TIMEOUT_S = 20
SOURCE_MODULES = {
    "hubble-file": "exporter.sources.file",
    "calico-flowlogs": "exporter.sources.file",
    "hubble-relay": "exporter.sources.hubble_relay",
    "calico-goldmane": "exporter.sources.goldmane_push",
}
GOLDMANE_DENY = {
    "Key": {
        "source_name": "test-client-6d4cf56db6-*", "source_namespace": "network-policy-test", "source_type": 1,
        "dest_name": "temporal-history-7d9f8b6c5d-*", "dest_namespace": "temporal", "dest_type": 1,
        "dest_port": 7235, "proto": "tcp", "reporter": 2, "action": 2,
        "policies": {"enforced_policies": [{"kind": 6, "namespace": "temporal", "name": "temporal-history-policy",
                                            "tier": "default", "action": 2, "policy_index": 0, "rule_index": -1}]},
    },
    "start_time": 1700000000, "end_time": 1700000300, "packets_in": 5,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    base_url: str
    paths: dict[str, Path]  # the pod's mountPath -> its stand-in directory
    source: str
    push_port: int | None
    log: Path

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_for(self, path: str, predicate: object, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the exporter exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            try:
                status, body = self.get(path)
                last = f"{status} {body[:300]}"
                if callable(predicate) and predicate(status, body):
                    return body
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        log_tail = self.log.read_text()[-2000:]
        pytest.fail(f"{path}: condition not met within {timeout} s; last answer {last}; log {log_tail}")


def _exporter(overlay: Rendered) -> Obj:
    [container] = [c for c in containers(overlay.workload()) if c["name"] == "exporter"]
    return container


def _local_args(overlay: Rendered, tmp_path: Path) -> tuple[list[str], dict[str, Path], str, int | None, int]:
    container = _exporter(overlay)
    volumes = {v["name"]: v for v in pod_spec(overlay.workload())["volumes"]}
    paths: dict[str, Path] = {}
    for mount in container["volumeMounts"]:
        local = tmp_path / mount["name"]
        local.mkdir()
        paths[mount["mountPath"]] = local
        configmap = volumes[mount["name"]].get("configMap")
        if configmap:
            for key, value in overlay.one("ConfigMap", configmap["name"])["data"].items():
                (local / key).write_text(value)
    listen_port, push_port = free_port(), None
    args: list[str] = []
    source = ""
    for arg in container["args"]:
        for mount_path in sorted(paths, key=len, reverse=True):
            if f"{mount_path}/" in arg or arg.endswith(mount_path):
                arg = arg.replace(mount_path, str(paths[mount_path]))
                break
        if arg.startswith("--listen="):
            arg = f"--listen=127.0.0.1:{listen_port}"
        elif arg.startswith("--source="):
            kind, _, rest = arg.removeprefix("--source=").partition(":")
            if kind in {"hubble-relay", "calico-goldmane-push"}:
                push_port = free_port()  # relay: nothing listens there; push: the receiver binds it
                rest = f"127.0.0.1:{push_port}"
            source = f"{kind}:{rest}"
            arg = f"--source={source}"
        args.append(arg)
    return [*args, "--no-kubernetes"], paths, source, push_port, listen_port


@pytest.fixture
def running(overlay: Rendered, tmp_path: Path) -> Iterator[Running]:
    module = SOURCE_MODULES[overlay.name]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not part of this build")
    args, paths, source, push_port, listen_port = _local_args(overlay, tmp_path)
    for spec in arg_value({"args": args}, "--source"):
        if spec.startswith(("hubble-file:", "calico-file:")):
            Path(spec.split(":", 1)[1]).touch()
    log = tmp_path / "exporter.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "exporter", *args], stdout=out, stderr=subprocess.STDOUT,
                                   cwd=REPO)
    run = Running(process, f"http://127.0.0.1:{listen_port}", paths, source, push_port, log)
    try:
        run.wait_for("/healthz", lambda status, _body: status == 200, START_TIMEOUT_S)
        yield run
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _dropped(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith("networkpolicy_dropped_packets_total{")]


def test_manifest_command_serves_and_counts(overlay: Rendered, running: Running) -> None:
    kind, _, where = running.source.partition(":")
    if kind in {"hubble-file", "calico-file"}:
        line = (hubble_line(verdict="DROPPED", reason="POLICY_DENIED") if kind == "hubble-file"
                else calico_line(action="deny"))
        with Path(where).open("ab") as flow_log:
            flow_log.write(line + b"\n")
    elif kind == "calico-goldmane-push":
        request = urllib.request.Request(f"http://127.0.0.1:{running.push_port}/", method="POST",
                                         data=json.dumps(GOLDMANE_DENY).encode() + b"\n",
                                         headers={"Content-Type": "application/x-ndjson"})
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    else:  # hubble-relay: nothing listens on the relay port, so the source is down and /readyz says so
        running.wait_for("/metrics", lambda _s, body: f'netpol_exporter_source_up{{source="{running.source}"}} 0'
                         in body, COUNT_TIMEOUT_S)
        status, body = running.get("/readyz")
        assert status == 503 and running.source in body, body
        return
    body = running.wait_for("/metrics", lambda _s, body: bool(_dropped(body)), COUNT_TIMEOUT_S)
    assert 'reason="POLICY_DENIED"' in _dropped(body)[0], _dropped(body)
    status, _ = running.get("/readyz")
    assert status == 200


@pytest.mark.parametrize("overlay", sorted(NODE_FILE_READERS), indirect=True)
def test_file_readers_checkpoint_into_the_state_dir(overlay: Rendered, running: Running) -> None:
    [state_dir] = arg_value(_exporter(overlay), "--state-dir")
    local_state = running.paths[state_dir]
    where = Path(running.source.split(":", 1)[1])
    line = hubble_line() if running.source.startswith("hubble") else calico_line()
    with where.open("ab") as flow_log:
        flow_log.write(line + b"\n")
    running.process.terminate()  # checkpoints are written on shutdown at the latest
    running.process.wait(timeout=15)
    assert any(p.is_file() for p in local_state.rglob("*")), f"nothing written to the state dir {state_dir}"
