"""Configuration: one pydantic model, loaded from YAML, overridden by environment and flags.

Precedence: flags > environment (`NETPOL_EXPORTER_<KEY>`, nested keys joined by `__`, e.g.
`NETPOL_EXPORTER_SERIES__MAX_PER_FAMILY=20000`; list values comma-separated) > YAML file > defaults.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from exporter.model import FAMILY_LABELS, Family
from exporter.sources.options import FileOptions, GoldmanePushOptions, GoldmaneStreamOptions, RelayOptions
from exporter.yamlfile import load_yaml_mapping

ENV_PREFIX = "NETPOL_EXPORTER_"
DEFAULT_PORT = 10215
LabelName = Literal[
    "policy", "direction", "source", "source_namespace", "destination", "destination_namespace",
    "destination_port", "protocol", "reason",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LabelsConfig(_Section):
    disabled: list[LabelName] = Field(
        default_factory=list, description="Flow labels to drop from every family (for cardinality).")


class SeriesConfig(_Section):
    max_per_family: int = Field(100_000, ge=1, description="Cap on live series per flow family.")
    max_overflow_series: int = Field(
        1000, ge=0, description="Cap on the per-policy `__overflow__` series per family; beyond it increments "
        "fold into the one series with every label `__overflow__`.")
    idle_expiry_seconds: float = Field(
        1200, ge=0, description="Remove a series not incremented for this long (0: never). Keep it "
        "longer than the alert windows (the shipped rules look back 5-15 m).")


class HubbleConfig(_Section):
    pairing_window_ms: float = Field(50, gt=0, le=10_000,
                                     description="How far a drop event looks back for its verdict twin.")
    aggregation_interval_seconds: float = Field(
        30, gt=0, le=86_400, description="The Cilium exporter's aggregation interval: aggregated lines "
        "pair count-wise within time // interval.")


class KubernetesConfig(_Section):
    enabled: bool | None = Field(None, description="None: on when in a cluster or a kubeconfig is given.")
    kubeconfig: str | None = None


class Config(_Section):
    listen: str = f"0.0.0.0:{DEFAULT_PORT}"
    sources: list[str] = Field(default_factory=list)
    state_dir: str | None = None
    log_format: Literal["logfmt", "json"] = "logfmt"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    web_config_file: str | None = None
    recent_denied_flows: int = Field(500, ge=0, description="Size of the recent denied flows ring.")
    grafana_url: str | None = Field(None, description="Grafana base URL: the landing page links each group of "
                                    "denied flows to the Denied flows review dashboard there.")
    labels: LabelsConfig = Field(default_factory=LabelsConfig)
    series: SeriesConfig = Field(default_factory=SeriesConfig)
    hubble: HubbleConfig = Field(default_factory=HubbleConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    policies: list[str] = Field(
        default_factory=list, description="Policy files or folders (- for stdin) naming the policies behind "
        "verdicts without a cluster (docs/netpol.md); excludes kubernetes.kubeconfig and turns auto-detection off.")
    policies_cni: Literal["cilium", "calico"] | None = Field(
        None, description="The CNI whose semantics evaluate `policies` (docs/netpol.md); default plain Kubernetes.")
    policies_namespace: str = Field("default", description="Namespace of `policies` without metadata.namespace.")
    file: FileOptions = Field(default_factory=FileOptions)
    relay: RelayOptions = Field(default_factory=RelayOptions)
    goldmane_push: GoldmanePushOptions = Field(default_factory=GoldmanePushOptions)
    goldmane_stream: GoldmaneStreamOptions = Field(default_factory=GoldmaneStreamOptions)

    @field_validator("listen")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        _host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        return value

    @model_validator(mode="after")
    def _policies_or_cluster(self) -> Config:
        if self.policies:
            if self.kubernetes.kubeconfig or self.kubernetes.enabled:
                raise ValueError("policies (policy files) and a Kubernetes API (kubernetes.kubeconfig / --kubeconfig, "
                                 "kubernetes.enabled) exclude each other: attribute from files or from the cluster")
            self.kubernetes.enabled = False  # no in-cluster auto-detection
        return self

    def family_labels(self, family: Family) -> tuple[str, ...]:
        return tuple(name for name in FAMILY_LABELS[family] if name not in self.labels.disabled)


class ConfigError(Exception):
    """An invalid configuration; the message names the key and the problem."""


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        nxt = target.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{'.'.join(path)}: {part} is not a section")
        target = nxt
    target[path[-1]] = value


def _env_overrides(env: Mapping[str, str], origins: dict[tuple[str, ...], str] | None = None) -> dict[str, Any]:
    """The NETPOL_EXPORTER_* values as a nested mapping; `origins` gets key path -> variable name."""
    out: dict[str, Any] = {}
    list_keys = {("sources",), ("labels", "disabled"), ("policies",)}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or not raw:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX):].split("__")]
        if path[0] not in Config.model_fields:
            continue  # not a config key (e.g. another tool's variable sharing the prefix)
        value: Any = [v.strip() for v in raw.split(",") if v.strip()] if tuple(path) in list_keys else raw
        _set_path(out, path, value)
        if origins is not None:
            origins[tuple(path)] = name
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the Config; raises ConfigError naming the file, key and problem."""
    data: dict[str, Any] = {}
    where = "configuration"
    if path is not None:
        where = str(path)
        data = load_yaml_mapping(path, ConfigError)
    from_env: dict[tuple[str, ...], str] = {}
    _merge(data, _env_overrides(os.environ if env is None else env, from_env))
    _merge(data, {k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = [_plain_problem(err, where, from_env) for err in exc.errors()]
        raise ConfigError("; ".join(problems)) from None


def _key_text(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _section_fields(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed in the section holding `loc[-1]` (for "did you mean")."""
    model: Any = Config
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


_EXPECTED = {
    "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
    "bool_type": "true or false", "string_type": "text", "list_type": "a list",
    "model_type": "a section (keys and values)", "dict_type": "a section (keys and values)",
}
_BOUNDS = {"greater_than_equal": ("ge", "{} or more"), "greater_than": ("gt", "more than {}"),
           "less_than_equal": ("le", "{} or less"), "less_than": ("lt", "less than {}")}


def _plain_problem(err: Any, where: str, from_env: Mapping[tuple[str, ...], str]) -> str:
    """One validation error in plain words, naming the file or the environment variable it came from."""
    loc = tuple(err["loc"])
    key = _key_text(loc)
    kind = err["type"]
    ctx = err.get("ctx") or {}
    got = f", got {err['input']!r}" if "input" in err and not isinstance(err["input"], dict | list) else ""
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _section_fields(loc), n=1)
        hint = f" (did you mean {_key_text((*loc[:-1], close[0]))}?)" if close else ""
        problem = f"unknown key {key}{hint}"
    elif kind == "missing":
        problem = f"{key}: missing"
    elif kind == "literal_error":
        problem = f"{key}: expected one of {ctx.get('expected', '?')}{got}"
    elif kind in _BOUNDS:
        bound, text = _BOUNDS[kind]
        problem = f"{key}: expected {text.format(ctx.get(bound))}{got}"
    elif kind in _EXPECTED:
        problem = f"{key}: expected {_EXPECTED[kind]}{got}"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
        problem = f"{key}: {message}"
    variable = next((name for path, name in from_env.items() if loc[: len(path)] == path), None)
    if variable is not None:
        return f"environment variable {variable}: {problem}"
    return f"{where}: {problem}"
