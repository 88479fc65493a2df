"""The push port cannot exhaust memory: a real exporter process under the attacks of issue 14 item 3
(8 concurrent 60 MB pushes, 16 bodies left unfinished, a gzip bomb) keeps its peak RSS under the
shipped 512 MiB limit and keeps answering /metrics. Loopback only, bounded: ~1 GB sent, < 60 s."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from tests.service.procs import Exporter, poll
from tests.sources.goldmane_flows import goldmane_flow

LIMIT_BYTES = 512 << 20  # deploy/: the container's memory limit
BODY_BYTES = 60 << 20


def push_port(exporter: Exporter) -> int:
    sources = json.loads(exporter.get("/api/v1/sources"))["sources"]
    match = re.search(r":(\d+)$", sources[0]["detail"])
    assert match, sources
    return int(match.group(1))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert match
    return int(match.group(1)) * 1024


def post(port: int, body: bytes, results: list[int], **headers: str) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, method="POST",
                                     headers={"Content-Type": "application/x-ndjson", **headers})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            results.append(resp.status)
    except urllib.error.HTTPError as exc:
        results.append(exc.code)
    except OSError:  # refused mid-body: the receiver closed the connection
        results.append(0)


def gzip_bomb(inflated: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    out = [packer.compress(zeros) for _ in range(inflated >> 20)]
    return b"".join(out) + packer.flush()


def test_push_attacks_keep_peak_rss_under_the_limit() -> None:
    exporter = Exporter(["run", "--source", "calico-goldmane-push:127.0.0.1:0", "--listen", "127.0.0.1:0",
                         "--no-kubernetes"])
    try:
        port = poll(lambda: push_port(exporter))
        line = goldmane_flow(packets_in=1) + b"\n"
        body = line * (BODY_BYTES // len(line))
        results: list[int] = []
        threads = [threading.Thread(target=post, args=(port, body, results)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert len(results) == 8 and 200 in results and set(results) <= {200, 503, 0}, results

        unfinished = []  # 16 bodies announced at 60 MB, 4 MB sent, then the clients leave
        for _ in range(16):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                         f"Content-Length: {BODY_BYTES}\r\n\r\n".encode())
            sock.settimeout(0.2)  # a body waiting for a slot is not read: send what the socket takes
            with contextlib.suppress(OSError):  # timed out, or refused (503) and closed by the receiver
                sock.sendall(body[: 4 << 20])
            unfinished.append(sock)
        time.sleep(1)
        for sock in unfinished:
            sock.close()

        bomb_results: list[int] = []
        bomb = gzip_bomb(1 << 30)
        cpu_before = cpu_seconds(exporter.proc.pid)
        post(port, bomb, bomb_results, **{"Content-Encoding": "gzip"})
        assert bomb_results == [413]
        assert exporter.get("/metrics")  # still answering
        # Inflating stops at the size limit: the 1 GiB bomb costs the exporter a fraction of a CPU-second
        # (inflating it whole burned 12). CPU, not wall time: the verdict does not depend on other load.
        assert cpu_seconds(exporter.proc.pid) - cpu_before < 3
        peak = peak_rss(exporter.proc.pid)
        print(f"push attacks: peak RSS {peak / (1 << 20):.0f} MiB (limit {LIMIT_BYTES >> 20} MiB); "
              f"8 x 60 MB pushes answered {sorted(results)}")
        assert peak < LIMIT_BYTES
    finally:
        exporter.proc.terminate()
        exporter.wait_exit(20)
