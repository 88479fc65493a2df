"""The Grafana dashboards ship as ConfigMaps, byte for byte, in every overlay."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.manifests import DEPLOY, REPO, Rendered


def _sync() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sync_dashboards", DEPLOY / "sync_dashboards.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mirror_is_up_to_date() -> None:
    sync = _sync()
    problems = sync.differences(sync.render())
    assert not problems, f"{problems}: run `python3 deploy/exporter/sync_dashboards.py`"


def test_every_dashboard_is_a_labelled_configmap(overlay: Rendered) -> None:
    sources = sorted((REPO / "dashboards").glob("*.json"))
    if not sources:
        pytest.skip("no dashboards/*.json in this checkout")
    shipped = {
        key: value
        for cm in overlay.kind("ConfigMap")
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
        for key, value in cm["data"].items()
    }
    assert sorted(shipped) == [p.name for p in sources], overlay.name
    for path in sources:
        assert shipped[path.name] == path.read_text(), f"{overlay.name}: {path.name} differs from dashboards/"
        json.loads(shipped[path.name])


def test_dashboard_configmaps_keep_stable_names(overlay: Rendered) -> None:
    sync = _sync()
    for cm in overlay.kind("ConfigMap"):
        if cm["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            [key] = cm["data"]
            assert cm["metadata"]["name"] == sync.configmap_name(key.removesuffix(".json"))


def test_bad_dashboard_is_named_in_the_error(tmp_path: Path) -> None:
    sync = _sync()
    (tmp_path / "broken.json").write_text('{"panels": [\n')
    with pytest.raises(sync.DashboardError, match=r"broken\.json line 2"):
        sync.render(tmp_path)
