"""Reading a YAML file whose top level must be a mapping, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_yaml_mapping(path: str | Path, error: type[Exception]) -> dict[str, Any]:
    """The file's top-level mapping ({} for an empty file); raises `error` naming the file and problem."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    import yaml  # here, not at the top: commands without a YAML file start without it

    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise error(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
    return loaded or {}
