"""The suite runs from a plain clone: no test reads outside the repository, and every upstream fixture
under tests/upstream carries its provenance."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
UPSTREAM = TESTS / "upstream"
OUTSIDE = re.compile(r"""["']\.\.["']\s*/\s*["']shared["']|\.\./shared""")


TEXT = ("*.py", "*.yaml", "*.yml", "*.md", "*.json", "*.txt")


def test_no_test_reads_the_shared_folder_beside_the_checkout() -> None:
    offenders = [
        f"{path.relative_to(TESTS)}:{number}"
        for pattern in TEXT for path in sorted(TESTS.rglob(pattern))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line) and path != Path(__file__).resolve()
    ]
    assert not offenders, "copy the fixture under tests/upstream instead: " + ", ".join(offenders)


def test_every_upstream_fixture_names_its_source() -> None:
    data = [p for p in UPSTREAM.rglob("*") if p.is_file() and p.name != "README.md"
            and not p.name.endswith("source.txt") and p.name != "SOURCE.txt"]
    assert len(data) > 20
    missing = []
    for path in data:
        candidates = [path.with_name(path.name + ".source.txt"), *(
            parent.with_name(parent.name + ".source.txt") for parent in path.relative_to(UPSTREAM).parents
            if parent != Path(".")
        )]
        candidates = [UPSTREAM / c if not c.is_absolute() else c for c in candidates]
        candidates += [parent / "SOURCE.txt" for parent in path.parents if UPSTREAM in (parent, *parent.parents)]
        if not any(c.is_file() for c in candidates):
            missing.append(str(path.relative_to(UPSTREAM)))
    assert not missing, f"no .source.txt for: {sorted(missing)}"
    readme = (UPSTREAM / "README.md").read_text(encoding="utf-8")
    for folder in ("samples/hubble", "samples/calico", "samples/netpol", "schemas/prometheus-operator", "seed"):
        assert f"`{folder}" in readme, f"tests/upstream/README.md does not describe {folder}"
