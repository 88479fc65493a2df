"""Structured logs: logfmt and JSON lines, and no secret in any line."""

from __future__ import annotations

import io
import json
import logging

import pytest

from exporter.service.logs import scrub, setup_logging


@pytest.fixture
def stream() -> io.StringIO:
    out = io.StringIO()
    yield out
    logging.getLogger().handlers.clear()


def test_json_lines(stream: io.StringIO) -> None:
    setup_logging("json", "info", stream)
    logging.getLogger("netpol_exporter.service").info("listening", extra={"address": "http://127.0.0.1:1", "n": 2})
    logging.getLogger("netpol_exporter.service").debug("not shown at info")
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "info" and entry["logger"] == "service" and entry["msg"] == "listening"
    assert entry["address"] == "http://127.0.0.1:1" and entry["n"] == 2
    assert entry["ts"].endswith("Z")


def test_logfmt_quoting(stream: io.StringIO) -> None:
    setup_logging("logfmt", "debug", stream)
    logging.getLogger("netpol_exporter.sources.file").warning('bad "line"\nnext', extra={"path": "/var/log/a b"})
    line = stream.getvalue().rstrip("\n")
    assert "\n" not in line
    assert 'level=warning logger=sources.file msg="bad \\"line\\"\\nnext" path="/var/log/a b"' in line


def test_exception_is_one_line(stream: io.StringIO) -> None:
    setup_logging("logfmt", "info", stream)
    try:
        raise ConnectionError("relay went away")
    except ConnectionError as exc:
        logging.getLogger("netpol_exporter.service").error("source failed", exc_info=exc)
    assert stream.getvalue().count("\n") == 1
    assert 'error="ConnectionError: relay went away"' in stream.getvalue()


@pytest.mark.parametrize("secret_text", [
    "Authorization: Basic cHJvbWV0aGV1czpodW50ZXIy",
    "headers={'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc'}",
    "connecting to https://prometheus:hunter2@relay.example:443",
    "password=hunter2 user=alice",
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----",
])
def test_secrets_never_reach_a_log_line(stream: io.StringIO, secret_text: str) -> None:
    setup_logging("json", "info", stream)
    logging.getLogger("netpol_exporter.x").error("failed: %s", secret_text, extra={"detail": secret_text})
    out = stream.getvalue()
    for secret in ("hunter2", "cHJvbWV0aGV1czpodW50ZXIy", "eyJhbGciOiJIUzI1NiJ9", "MIGHAgEAMBMGByqGSM49"):
        assert secret not in out
    assert "redacted" in out


def test_scrub_leaves_ordinary_text_alone() -> None:
    text = "source hubble-file:/var/run/cilium/hubble/events.log rotated; 12 lines at offset 4096"
    assert scrub(text) == text
