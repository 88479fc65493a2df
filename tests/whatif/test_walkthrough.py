"""docs/whatif.md: the offline steps of the walk-through run as written, with the output shown.

Every ```console block is run, in order, in one shell from a scratch folder that sees the
repository's `deploy/` and `tests/`: `$ ` lines are commands, the lines after them the output
(stdout and stderr) they must print, in order; `...` stands for lines left out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "whatif.md"
MARK = "@@@ step"


def steps() -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        for line in block.splitlines():
            if line.startswith("$ "):
                out.append((line[2:], []))
            else:
                out[-1][1].append(line)
    return out


def matches(expected: list[str], actual: list[str]) -> bool:
    """`expected` in order, `...` skipping any lines; otherwise line for line."""
    i = 0
    skipping = False
    for want in expected:
        if want == "...":
            skipping = True
            continue
        while i < len(actual) and actual[i] != want:
            if not skipping:
                return False
            i += 1
        if i == len(actual):
            return False
        i += 1
        skipping = False
    return skipping or i == len(actual)


def test_the_offline_walkthrough_runs_as_written(tmp_path: Path) -> None:
    planned = steps()
    assert len(planned) >= 10
    for name in ("deploy", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    # each command sees the previous one's exit status in $?, as typed in a terminal
    script = "rc=0\n" + "".join(f"echo '{MARK} {i}'\n(exit $rc)\n{command}\nrc=$?\n"
                                  for i, (command, _) in enumerate(planned))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
    env.pop("KUBECONFIG", None)
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300, stdin=subprocess.DEVNULL)
    outputs: dict[int, list[str]] = {}
    current = -1
    for line in run.stdout.splitlines():  # stdout and stderr together, as a terminal shows them
        if line.startswith(MARK):
            current = int(line.split()[-1])
            outputs[current] = []
        elif current >= 0:
            outputs[current].append(line)
    for i, (command, expected) in enumerate(planned):
        actual = outputs.get(i, [])
        assert matches(expected, actual), f"$ {command}\nexpected:\n" + "\n".join(expected) + \
            "\nactual:\n" + "\n".join(actual)


def test_every_reason_code_is_documented() -> None:
    from exporter.whatif.decide import REASONS

    documented = re.findall(r"^\| `([a-z0-9-]+)` \| ", DOC.read_text(encoding="utf-8"), re.M)
    assert sorted(documented) == sorted(REASONS)
