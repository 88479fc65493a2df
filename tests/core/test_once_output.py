"""`once` for people and scripts: exit statuses, nothing on stdout on error, per-file summaries,
`--table` and `--json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.commands.report import fit_widths, format_table
from tests.core.flows import calico_line, hubble_line

EXE = [sys.executable, "-m", "exporter"]


def once(*args: str, stdin: bytes = b"", columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run([*EXE, "once", *args], input=stdin.decode(), capture_output=True, text=True, timeout=60,
                          env=env)


def denied(port: int, src_pod: str = "test-client") -> bytes:
    return hubble_line(verdict="DROPPED", reason="POLICY_DENIED", l4={"TCP": {"destination_port": port}},
                       src={"ID": 1, "identity": 1234, "namespace": "network-policy-test",
                            "labels": [f"k8s:app={src_pod}"], "pod_name": src_pod})


def test_a_file_with_no_valid_line_exits_1_and_prints_nothing(tmp_path: Path) -> None:
    binary = tmp_path / "binary.log"
    binary.write_bytes(bytes(b for b in range(256) if b != 10) * 40 + b"\n\x00\xff\n" * 20)
    proc = once("--format", "hubble", str(binary))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"{binary}: read 21, counted 0, ignored 0, invalid 21 (no valid hubble line" in proc.stderr


def test_well_formed_lines_that_do_not_count_are_fine(tmp_path: Path) -> None:
    traces = tmp_path / "traces.log"
    traces.write_bytes(hubble_line(event_type=4, verdict="FORWARDED") + b"\n")  # a trace: ignored, not invalid
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    proc = once("--format", "hubble", str(traces), str(empty))
    assert proc.returncode == 0, proc.stderr
    assert f"{traces}: read 1, counted 0, ignored 1, invalid 0" in proc.stderr
    assert f"{empty}: read 0, counted 0, ignored 0, invalid 0" in proc.stderr
    assert "netpol_exporter_events_read_total" in proc.stdout


def test_some_invalid_lines_exit_0_unless_strict(tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    log.write_bytes(denied(7235) + b"\n{oops\n")
    relaxed = once("--format", "hubble", str(log))
    assert relaxed.returncode == 0
    assert "networkpolicy_dropped_packets_total{" in relaxed.stdout
    strict = once("--format", "hubble", "--strict", str(log))
    assert strict.returncode == 1
    assert strict.stdout == ""
    assert f"{log}:2: invalid hubble line" in strict.stderr
    assert f"{log}: read 2, counted 1, ignored 0, invalid 1" in strict.stderr


def test_usage_errors_exit_2_with_nothing_on_stdout(tmp_path: Path) -> None:
    for args in (("--format", "nope", "-"), ("--format", "hubble", "--top", "0", "-"),
                 ("--format", "hubble", "--table", "--json", "-")):
        proc = once(*args)
        assert proc.returncode == 2, args
        assert proc.stdout == "", args


def test_help_states_the_exit_statuses() -> None:
    proc = subprocess.run([*EXE, "once", "--help"], capture_output=True, text=True, timeout=60)
    assert "exit status: 0 counted" in " ".join(proc.stdout.split())


def test_json_lists_every_series_with_the_contract_labels_sorted_by_count() -> None:
    lines = [denied(7235)] * 3 + [denied(8080)] + [hubble_line(verdict="FORWARDED")] * 2
    proc = once("--format", "hubble", "--json", "-", stdin=b"\n".join(lines) + b"\n")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {"dropped", "allowed", "audit"}
    assert [(r["destination_port"], r["count"]) for r in doc["dropped"]] == [("7235", 3), ("8080", 1)]
    assert set(doc["dropped"][0]) == {"policy", "direction", "source", "source_namespace", "destination",
                                      "destination_namespace", "destination_port", "protocol", "reason", "count"}
    assert doc["dropped"][0]["source"] == "network-policy-test/test-client"
    assert doc["allowed"][0]["count"] == 2 and "reason" not in doc["allowed"][0]
    assert doc["audit"] == []


def test_json_keeps_only_enabled_labels(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("labels:\n  disabled: [source, source_namespace]\n")
    proc = once("--format", "calico", "--json", "--config", str(cfg), "-", stdin=calico_line() + b"\n")
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout)["dropped"][0]
    assert "source" not in row and "source_namespace" not in row and row["count"] >= 1


def test_table_shows_the_top_rows_and_fits_the_terminal() -> None:
    pods = [f"a-rather-long-client-name-{chr(97 + i % 26)}{i}x" for i in range(30)]
    lines = [denied(7000 + i, src_pod=pods[i]) for i in range(30) for _ in range(i + 1)]
    lines += [hubble_line(verdict="FORWARDED")] * 4
    proc = once("--format", "hubble", "--table", "--top", "5", "-", stdin=b"\n".join(lines) + b"\n", columns=90)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == f"Denied flows: top 5 of 30 series, {sum(range(1, 31))} in all"
    assert out[1].split() == ["COUNT", "POLICY", "DIRECTION", "SOURCE", "DESTINATION", "PORT", "REASON"]
    assert [line.split()[0] for line in out[2:7]] == ["30", "29", "28", "27", "26"]
    assert "7029/TCP" in out[2] and "POLICY_DENIED" in out[2] and "ingress" in out[2]
    assert "Allowed flows: 1 series, 4 in all" in out
    assert max(len(line) for line in out) <= 90
    wide = once("--format", "hubble", "--table", "-", stdin=b"\n".join(lines) + b"\n", columns=300)
    assert "network-policy-test/a-rather-long-client-name-d29x" in wide.stdout


@pytest.mark.parametrize("width", [40, 60, 100])
def test_fitted_widths_shrink_only_names_and_never_below_the_header(width: int) -> None:
    header = ["COUNT", "POLICY", "DIRECTION", "SOURCE", "DESTINATION", "PORT"]
    rows = [["12", "temporal/temporal-history-policy", "ingress", "network-policy-test/test-client",
             "temporal/temporal-history", "7235/TCP"]]
    lines = format_table(rows, header, width, (1, 3, 4))
    natural = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    widths = fit_widths(natural, [max(8, len(h)) for h in header], width, (1, 3, 4))
    assert widths[0] == 5 and widths[2] == 9 and widths[5] == 8
    assert all(w >= len(h) for w, h in zip(widths, header, strict=True))
    if sum(max(8, len(h)) for h in header) + 10 <= width:
        assert max(len(line) for line in lines) <= width
    assert lines[0].split() == header
