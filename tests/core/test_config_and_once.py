from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config import ConfigError, load_config
from tests.core.flows import hubble_line

EXE = [sys.executable, "-m", "exporter"]


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("listen: 127.0.0.1:1111\nseries:\n  max_per_family: 10\nlabels:\n  disabled: [source]\n")
    env = {"NETPOL_EXPORTER_LISTEN": "127.0.0.1:2222", "NETPOL_EXPORTER_SERIES__MAX_PER_FAMILY": "20",
           "NETPOL_EXPORTER_SOURCES": "hubble-stdin, calico-stdin"}
    c = load_config(cfg, env=env, overrides={"listen": "127.0.0.1:3333", "state_dir": None})
    assert c.listen == "127.0.0.1:3333"
    assert c.series.max_per_family == 20
    assert c.sources == ["hubble-stdin", "calico-stdin"]
    assert c.labels.disabled == ["source"]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("series:\n  max_per_family: 0\n", "series.max_per_family"),
        ("labels:\n  disabled: [pod]\n", "labels.disabled[0]: expected one of 'policy'"),
        ("listen: nowhere\n", "listen"),
        ("bogus: 1\n", "bogus"),
        ("- a\n", "expected a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_invalid_config_names_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_config(cfg, env={})
    assert str(cfg) in str(err.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NETPOL_EXPORTER_SERIES__MAX_PER_FAMLY": "5"}, "environment variable NETPOL_EXPORTER_SERIES__MAX_PER_FAMLY: "
         "unknown key series.max_per_famly (did you mean series.max_per_family?)"),
        ({"NETPOL_EXPORTER_SERIES__MAX_PER_FAMILY": "many"}, "environment variable "
         "NETPOL_EXPORTER_SERIES__MAX_PER_FAMILY: series.max_per_family: expected a whole number, got 'many'"),
        ({"NETPOL_EXPORTER_SERIES__MAX_PER_FAMILY": "0"}, "series.max_per_family: expected 1 or more, got '0'"),
        ({"NETPOL_EXPORTER_LOG_LEVEL": "loud"}, "environment variable NETPOL_EXPORTER_LOG_LEVEL: log_level: "
         "expected one of 'debug', 'info', 'warning' or 'error', got 'loud'"),
        ({"NETPOL_EXPORTER_HUBBLE": "3"}, "hubble: expected a section (keys and values), got '3'"),
    ],
)
def test_config_errors_from_the_environment_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(env=env)
    assert message in str(err.value)
    assert "Extra inputs" not in str(err.value) and "Input should" not in str(err.value)


def test_config_file_errors_are_in_plain_words(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("seires:\n  max_per_family: 3\nfile:\n  poll_intervl_seconds: 1\nlisten: nowhere\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    text = str(err.value)
    assert f"{cfg}: unknown key seires (did you mean series?)" in text
    assert f"{cfg}: unknown key file.poll_intervl_seconds (did you mean file.poll_interval_seconds?)" in text
    assert f"{cfg}: listen: expected HOST:PORT, got 'nowhere'" in text
    assert "Value error" not in text


def test_once_exits_2_on_invalid_config(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("series:\n  max_per_family: -1\n")
    proc = subprocess.run([*EXE, "once", "--format", "hubble", "--config", str(cfg), "-"], input=b"",
                          capture_output=True, timeout=60)
    assert proc.returncode == 2
    assert b"series.max_per_family" in proc.stderr


def test_once_reports_invalid_lines_with_file_and_line(tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    good = hubble_line(verdict="DROPPED", reason="POLICY_DENIED")
    log.write_bytes(b"\n".join([good] + [b"{oops"] * 8 + [good[: len(good) // 2]]))  # last line truncated
    proc = subprocess.run([*EXE, "once", "--format", "hubble", str(log)], capture_output=True, timeout=60)
    assert proc.returncode == 0
    err = proc.stderr.decode().splitlines()
    assert err[0].startswith(f"{log}:2: invalid hubble line")
    assert sum(1 for line in err if ": invalid hubble line" in line) == 5
    assert err[-2] == f"{log}: 9 invalid lines in all (4 more not shown)"
    assert err[-1] == f"{log}: read 10, counted 1, ignored 0, invalid 9"
    out = proc.stdout.decode()
    assert f'netpol_exporter_events_invalid_total{{source="hubble:{log}"}} 9' in out
    assert 'networkpolicy_dropped_packets_total{policy="default-deny"' in out


def test_once_reads_stdin_and_gzip(tmp_path: Path) -> None:
    import gzip

    line = hubble_line(verdict="FORWARDED")
    gz = tmp_path / "events.log.1.gz"
    gz.write_bytes(gzip.compress(line + b"\n" + line + b"\n"))
    proc = subprocess.run([*EXE, "once", "--format", "hubble", "-", str(gz)], input=line + b"\n",
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert 'netpol_exporter_events_counted_total{source="hubble:-"} 1' in out
    assert f'netpol_exporter_events_counted_total{{source="hubble:{gz}"}} 2' in out


def test_once_reads_zstd(tmp_path: Path) -> None:
    """Calico Enterprise's compressed flow-log backups (flows-<time>.log.zst)."""
    import zstandard

    from tests.core.flows import calico_line

    backup = tmp_path / "flows-2026-12-04T10-00-00.000.log.zst"
    backup.write_bytes(zstandard.ZstdCompressor().compress(calico_line() + b"\n" + calico_line() + b"\n"))
    proc = subprocess.run([*EXE, "once", "--format", "calico", str(backup)], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f'netpol_exporter_events_counted_total{{source="calico:{backup}"}} 2' in proc.stdout.decode()


def test_once_missing_file_is_an_error_and_prints_nothing(tmp_path: Path) -> None:
    good = tmp_path / "g.log"
    good.write_bytes(hubble_line(verdict="FORWARDED") + b"\n")
    proc = subprocess.run([*EXE, "once", "--format", "hubble", str(tmp_path / "missing.log"), str(good)],
                          capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert f"netpol-exporter: {tmp_path / 'missing.log'}: cannot read: No such file" in proc.stderr.decode()
    assert f"{good}: read 1, counted 1, ignored 0, invalid 0" in proc.stderr.decode()
    assert proc.stdout == b""
