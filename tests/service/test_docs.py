"""docs/configuration.md documents every config key and its variable, and its example is valid."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from exporter.config import ENV_PREFIX, Config, load_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(_keys(annotation, f"{prefix}{name}."))
        else:
            out.append(prefix + name)
    return out


def test_every_key_and_env_var_documented() -> None:
    text = DOC.read_text()
    keys = _keys(Config)
    assert "series.max_per_family" in keys and "kubernetes.kubeconfig" in keys
    for key in keys:
        assert f"| `{key}` |" in text, key
        env = ENV_PREFIX + key.upper().replace(".", "__")
        assert f"`{env}`" in text, env


def test_example_is_a_valid_config(tmp_path: Path) -> None:
    example = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert example is not None
    path = tmp_path / "config.yaml"
    path.write_text(example.group(1))
    config = load_config(path, env={})
    assert config.sources == ["hubble-file:/var/run/cilium/hubble/events.log"]
    assert config.series.max_per_family == 100000 and config.kubernetes.enabled is True
