"""Shared paths and loaders for the dashboard tests."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
RULES = REPO / "rules"


def load_builder() -> ModuleType:
    """dashboards/build.py as a module (it is a script, not part of the package)."""
    return load_module("build.py")


def load_module(file_name: str) -> ModuleType:
    """A script of dashboards/ as a module."""
    spec = importlib.util.spec_from_file_location(f"netpol_dashboards_{file_name[:-3]}", DASHBOARDS / file_name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def committed() -> dict[str, dict[str, Any]]:
    """File name -> the committed dashboard JSON."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def recording_rules() -> dict[str, str]:
    """record name -> expression of every recording rule in rules/*.yml."""
    import yaml

    out: dict[str, str] = {}
    for path in sorted(RULES.glob("*.yml")):
        for group in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", []):
            for r in group.get("rules", []):
                if "record" in r:
                    out[r["record"]] = r["expr"]
    return out


def alert_names() -> list[str]:
    import yaml

    return [r["alert"] for path in sorted(RULES.glob("*.yml"))
            for group in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", [])
            for r in group.get("rules", []) if "alert" in r]
