"""Fenced examples of README.md and docs/*.md, and what a test does with each.

A block is classified by its content, or by a marker on a line just before its fence:
`<!-- example: needs a cluster -->` (or Docker, a registry, a node's flow logs, TLS files...), `<!-- example:
synopsis -->`, `<!-- example: runs until stopped -->`, `<!-- example: installs -->`, `<!-- example: fragment
(...) -->`. Marked blocks are not run; they are listed. `<!-- example: output of the block above, COLUMNS=N
-->` marks the exact stdout of the shell block before it, run at that terminal width. Unmarked blocks:

- shell (sh, bash, console, or unlabelled lines starting with `netpol-exporter`): every `netpol-exporter`
  command is run from the repository root and must exit 0. A shell block using kubectl, docker or helm
  must be marked.
- yaml: a configuration file (top-level keys of exporter.config.Config) is loaded; a model file
  (`probes:`/`pods:`) is checked with `netpol-exporter check` and must exit 0; anything else must be marked.
- python: executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*example:\s*(.+?)\s*-->\s*$")
MARK_KINDS = ("needs ", "synopsis", "runs until stopped", "installs", "fragment", "output")
OUTPUT = re.compile(r"^output of the block above, COLUMNS=(\d+)$")
SHELL_LANGUAGES = {"sh", "bash", "console", "shell"}
CLUSTER_TOOLS = re.compile(r"(^|[\s|;&(])(kubectl|docker|helm)\s")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    def commands(self) -> list[str]:
        """The shell commands of the block, continuation lines joined; console output left out."""
        lines = self.text.splitlines()
        if self.language == "console":
            lines = [line[2:] for line in lines if line.startswith("$ ")]
        out: list[str] = []
        pending = ""
        for line in lines:
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            pending += line
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            out.append(pending.strip())
            pending = ""
        return out

    @property
    def is_shell(self) -> bool:
        if self.language in SHELL_LANGUAGES:
            return True
        return self.language == "" and self.text.lstrip().startswith(("netpol-exporter ", "$ netpol-exporter "))


def blocks(paths: list[Path] = DOCUMENTS) -> list[Block]:
    found = []
    for path in paths:
        lines = path.read_text(encoding="utf-8").splitlines()
        index = 0
        while index < len(lines):
            match = FENCE.match(lines[index])
            if not match:
                index += 1
                continue
            end = next(j for j in range(index + 1, len(lines)) if lines[j].startswith("```"))
            before = index - 1
            while before >= 0 and not lines[before].strip():
                before -= 1
            marker = MARKER.match(lines[before]) if before >= 0 else None
            found.append(Block(path, index + 1, match.group(1), "\n".join(lines[index + 1:end]) + "\n",
                               marker.group(1) if marker else None))
            index = end + 1
    return found
