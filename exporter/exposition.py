"""Prometheus text 0.0.4 and OpenMetrics 1.0 rendering of the flow stores and other families."""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from exporter.store import SeriesStore, escape_label_value

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass
class MetricFamily:
    """A small family (self-metrics, info metrics): samples keyed by label-value tuples."""

    name: str  # without `_total` for counters
    type: str  # "counter" | "gauge"
    help: str
    label_names: Sequence[str] = ()
    samples: dict[tuple[str, ...], float] = field(default_factory=dict)

    def set(self, value: float, *labels: str) -> None:
        self.samples[labels] = value


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _header(out: list[str], name: str, type_: str, help_text: str, openmetrics: bool) -> str:
    """Write HELP/TYPE lines; returns the sample name."""
    help_text = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    sample = f"{name}_total" if type_ == "counter" else name
    meta = name if openmetrics else sample
    out.append(f"# HELP {meta} {help_text}\n# TYPE {meta} {type_}\n")
    return sample


def render_store(out: list[str], store: SeriesStore, openmetrics: bool) -> None:
    sample = _header(out, store.name, "counter", store.help, openmetrics)
    prefix = sample + "{"
    out.extend(f"{prefix}{labels}}} {_number(value)}\n" for labels, value in store.samples())


def render_family(out: list[str], family: MetricFamily, openmetrics: bool) -> None:
    sample = _header(out, family.name, family.type, family.help, openmetrics)
    names = family.label_names
    for labels, value in list(family.samples.items()):
        if names:
            text = ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, labels, strict=True))
            out.append(f"{sample}{{{text}}} {_number(value)}\n")
        else:
            out.append(f"{sample} {_number(value)}\n")


def render(
    stores: Iterable[SeriesStore], families: Iterable[MetricFamily], *, openmetrics: bool = False
) -> bytes:
    out: list[str] = []
    for store in stores:
        render_store(out, store, openmetrics)
    for family in families:
        render_family(out, family, openmetrics)
    if openmetrics:
        out.append("# EOF\n")
    return "".join(out).encode()


def negotiate(accept: str | None) -> tuple[bool, str]:
    """(openmetrics?, content type) for an Accept header, as Prometheus negotiates."""
    if accept and "application/openmetrics-text" in accept:
        return True, OPENMETRICS_CONTENT_TYPE
    return False, TEXT_CONTENT_TYPE


def maybe_gzip(body: bytes, accept_encoding: str | None) -> tuple[bytes, str | None]:
    if accept_encoding and "gzip" in accept_encoding:
        return gzip.compress(body, compresslevel=1), "gzip"
    return body, None
