"""The alerting pack's files, loaded once for the tests of tests/rules/."""

from __future__ import annotations

import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
PROMTOOL_TESTS = sorted((Path(__file__).parent / "promtool").glob("*.test.yml"))
ALERTMANAGER_CONFIG = RULES_DIR / "alertmanager" / "alertmanager.yml"
RUNBOOK = REPO / "docs" / "runbook.md"
PROMETHEUSRULE = REPO / "deploy" / "exporter" / "base" / "prometheusrule.yaml"
CRD = REPO / "tests" / "upstream" / "schemas" / "prometheus-operator" / "crd_prometheusrules.yaml"


@cache
def rules() -> list[dict[str, Any]]:
    """Every rule of rules/*.yml, each with `_file` and `_group` added."""
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append({**rule, "_file": path.name, "_group": group["name"]})
    return found


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def recordings() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "record" in rule]


@cache
def promtool_tests() -> list[dict[str, Any]]:
    return [test for path in PROMTOOL_TESTS for test in yaml.safe_load(path.read_text())["tests"]]


@cache
def generator() -> ModuleType:
    """scripts/gen_prometheusrule.py as a module."""
    path = REPO / "scripts" / "gen_prometheusrule.py"
    spec = importlib.util.spec_from_file_location("gen_prometheusrule", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def runbook_anchors() -> set[str]:
    """GitHub-style anchors of the runbook's headings."""
    anchors = set()
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-"))
    return anchors
