"""Static checks of the Dockerfile and .dockerignore (no image registry here, so the image is not built).

Pinned slim base, only local COPY sources that the build context really contains, a numeric non-root
USER in the final stage, the default port exposed, and the console script as the entrypoint.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from dataclasses import dataclass

from exporter.config import DEFAULT_PORT
from tests.deploy.manifests import NODE_FILE_READERS, OVERLAYS, REPO, pod_spec, rendered

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
PINNED_PYTHON = re.compile(r"^(docker\.io/library/)?python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")


@dataclass
class Instruction:
    line: int
    keyword: str
    value: str


def instructions() -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(DOCKERFILE.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, value = text.partition(" ")
        out.append(Instruction(start, keyword.upper(), value.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def stages() -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def _args() -> dict[str, str]:
    values = {}
    for instruction in instructions():
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG" and "=" in instruction.value:
            name, _, default = instruction.value.partition("=")
            values[name] = default.strip('"')
    return values


def _base_image(value: str) -> str:
    image = value.split()[0]
    for name, default in _args().items():
        image = image.replace("${" + name + "}", default).replace("$" + name, default)
    return image


def test_every_external_base_is_a_pinned_slim_python() -> None:
    stage_names: set[str] = set()
    for stage in stages():
        source = stage[0]
        image = _base_image(source.value)
        if image not in stage_names:
            assert PINNED_PYTHON.match(image), f"Dockerfile line {source.line}: base {image!r} is not pinned"
        parts = source.value.split()
        if len(parts) == 3 and parts[1].upper() == "AS":
            stage_names.add(parts[2])


def test_no_remote_or_archive_adds_and_no_piped_installers() -> None:
    for instruction in instructions():
        assert instruction.keyword != "ADD", f"Dockerfile line {instruction.line}: use COPY (ADD fetches URLs, unpacks)"
        if instruction.keyword == "RUN":
            assert not re.search(r"(curl|wget)[^|]*\|\s*(ba)?sh", instruction.value), f"line {instruction.line}"
            assert "sudo" not in instruction.value, f"line {instruction.line}"


def test_final_stage_runs_as_a_numeric_non_root_user() -> None:
    final = stages()[-1]
    users = [i for i in final if i.keyword == "USER"]
    assert users, "the final stage sets no USER: the container would run as root"
    user, _, group = users[-1].value.partition(":")
    assert user.isdigit() and int(user) > 0, f"Dockerfile line {users[-1].line}: USER {users[-1].value}"
    assert not group or (group.isdigit() and int(group) > 0), f"Dockerfile line {users[-1].line}"
    after_user = final[final.index(users[-1]) + 1:]
    assert not [i for i in after_user if i.keyword == "RUN"], "RUN after USER: build steps should not run as the app"
    for name in sorted(set(OVERLAYS) - NODE_FILE_READERS):
        pod = pod_spec(rendered(name).workload())
        assert pod["securityContext"]["runAsUser"] == int(user), f"{name}: runAsUser differs from the image's USER"


def test_exposes_the_default_port_and_runs_the_console_script() -> None:
    final = stages()[-1]
    exposed = [i.value for i in final if i.keyword == "EXPOSE"]
    assert exposed == [str(DEFAULT_PORT)], exposed
    [entrypoint] = [i for i in final if i.keyword == "ENTRYPOINT"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert json.loads(entrypoint.value) == ["netpol-exporter"] and "netpol-exporter" in scripts


def test_pip_keeps_no_cache_in_the_image() -> None:
    for stage in stages():
        env = " ".join(i.value for i in stage if i.keyword == "ENV")
        for run in (i for i in stage if i.keyword == "RUN" and "pip " in i.value):
            assert "--no-cache-dir" in run.value or "PIP_NO_CACHE_DIR=1" in env, f"Dockerfile line {run.line}"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        if fnmatch.fnmatch(path, body) or fnmatch.fnmatch(path, body.replace("**/", "")) or path.startswith(body + "/"):
            ignored = not negate
    return ignored


def test_copy_sources_exist_and_are_in_the_build_context() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    for instruction in instructions():
        if instruction.keyword != "COPY":
            continue
        words = shlex.split(instruction.value)
        if any(w.startswith("--from=") for w in words):
            continue
        sources = [w for w in words if not w.startswith("--")][:-1]
        for source in sources:
            path = REPO / source
            assert path.exists(), f"Dockerfile line {instruction.line}: COPY {source}: not in the repository"
            assert not _ignored(source.rstrip("/"), patterns), f"line {instruction.line}: {source} is .dockerignored"
            files = [path] if path.is_file() else [p for p in path.rglob("*.py")]
            for file in files:
                rel = str(file.relative_to(REPO))
                assert not _ignored(rel, patterns), f".dockerignore drops {rel}, which COPY {source} needs"


def test_context_leaves_out_what_the_image_does_not_need() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    for path in (".git", ".venv", "tests", "deploy", "bench", "exporter/__pycache__/cli.cpython-311.pyc"):
        assert _ignored(path, patterns), f"{path} would be sent to the Docker daemon"
