"""Every example of README.md and docs/ that runs without a cluster is run (see tests/docs/examples.py)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporter.config import Config, load_config
from tests.docs.examples import CLUSTER_TOOLS, MARK_KINDS, OUTPUT, REPO, Block, blocks

ALL = blocks()
MARKED = [b for b in ALL if b.marker is not None]
OUTPUTS = [(ALL[i - 1], b) for i, b in enumerate(ALL) if b.marker and b.marker.startswith("output")]
SHELL = [b for b in ALL if b.marker is None and b.is_shell]
YAML = [b for b in ALL if b.marker is None and b.language == "yaml"]
PYTHON = [b for b in ALL if b.marker is None and b.language == "python"]
RUNNABLE = {"once", "check", "lint", "whatif", "suggest", "demo"}
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "200"}


def _ids(items: list[Block]) -> list[str]:
    return [b.where for b in items]


def test_marked_examples_say_why_they_are_not_run(capsys: pytest.CaptureFixture[str]) -> None:
    bad = [f"{b.where}: {b.marker!r}" for b in MARKED if not b.marker or not b.marker.startswith(MARK_KINDS)]
    assert not bad, f"a marker starts with one of {MARK_KINDS}: " + "; ".join(bad)
    with capsys.disabled():
        print("\nexamples not run:\n" + "\n".join(f"  {b.where}: {b.marker}" for b in MARKED))
    assert len(SHELL) + len(YAML) + len(PYTHON) >= 10  # the extraction finds the docs' examples


def _netpol_commands(block: Block) -> list[str]:
    return [c for c in block.commands() if c.startswith("netpol-exporter ") or "| netpol-exporter " in c]


@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_shell_example_runs(block: Block, tmp_path: Path) -> None:
    assert not CLUSTER_TOOLS.search(block.text), f"{block.where}: uses a cluster tool: mark it `needs ...`"
    for command in _netpol_commands(block):
        words = shlex.split(command.split("|")[-1].strip(), comments=True)
        sub = next((w for w in words[1:] if not w.startswith("-")), None)
        assert sub in RUNNABLE or words[1:] == ["--help"], (
            f"{block.where}: `{command}` cannot run here: mark the block (e.g. `<!-- example: runs until stopped -->`)")
        if sub == "demo":
            command += " --duration 1 --listen 127.0.0.1:0"
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=REPO, env=ENV, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, f"{block.where}: `{command}` exited {proc.returncode}:\n{proc.stderr[-2000:]}"


@pytest.mark.parametrize(("command_block", "output"), OUTPUTS, ids=[o.where for _, o in OUTPUTS])
def test_shown_output_is_what_the_command_prints(command_block: Block, output: Block) -> None:
    match = OUTPUT.match(output.marker or "")
    assert match, f"{output.where}: expected `output of the block above, COLUMNS=N`"
    assert command_block.path == output.path and command_block.is_shell, f"{output.where}: no command above"
    (command,) = _netpol_commands(command_block)
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=REPO, capture_output=True, text=True,
                          env={**ENV, "COLUMNS": match.group(1)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == output.text, f"{output.where}: the docs show other output than `{command}` prints"


@pytest.mark.parametrize("block", YAML, ids=_ids(YAML))
def test_yaml_example_loads(block: Block, tmp_path: Path) -> None:
    doc = yaml.safe_load(block.text)
    assert isinstance(doc, dict), f"{block.where}: not a mapping: mark it as a `fragment (...)`"
    file = tmp_path / "example.yaml"
    file.write_text(block.text)
    if "probes" in doc or "pods" in doc:
        proc = subprocess.run([sys.executable, "-m", "exporter", "check", str(file)], cwd=REPO, env=ENV,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{block.where}: the model fails `check` ({proc.returncode}):\n" \
                                     f"{proc.stderr}{proc.stdout}"
        return
    unknown = set(doc) - set(Config.model_fields)
    assert not unknown, f"{block.where}: neither configuration nor model (keys {sorted(unknown)}): mark it"
    load_config(file, env={})  # raises ConfigError naming the key


@pytest.mark.parametrize("block", PYTHON, ids=_ids(PYTHON))
def test_python_example_runs(block: Block) -> None:
    proc = subprocess.run([sys.executable, "-c", block.text], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, f"{block.where}:\n{proc.stderr[-2000:]}"
