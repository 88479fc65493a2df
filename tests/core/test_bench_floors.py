"""The benchmark's comparison points count what the exporter counts (bench/floor_*.py, bench/flowgen.py).

A floor script that counted less would make the exporter look faster than it is: on the generated
shapes the benchmark uses, its counters must equal the exporter's, series by series.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from exporter.pipeline import Pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import floor_calico
import floor_hubble
import flowgen


def _exporter_counts(fmt: str, lines: list[bytes]) -> dict[str, dict[tuple[str, ...], float]]:
    pipeline = Pipeline()
    pipeline.ingest(pipeline.source("bench", fmt), lines)
    return {family.name.lower(): {key: entry[0] for key, entry in store.series.items()}
            for family, store in pipeline.stores.items() if store.series}


@pytest.mark.parametrize("shape", ["day", "masked", "dense"])
def test_hubble_floor_counts_what_the_exporter_counts(shape: str) -> None:
    generator = flowgen.HubbleGenerator(seed=7)
    lines = {"day": generator.day_lines, "masked": generator.masked_lines, "dense": generator.lines}[shape](4000)
    counts = _exporter_counts("hubble", lines)
    assert counts["allowed"] and counts["dropped"]
    assert counts == {family: series for family, series in floor_hubble.count(lines).items() if series}


def test_calico_floor_counts_what_the_exporter_counts() -> None:
    lines = flowgen.calico_lines(3000, seed=7)
    counts = _exporter_counts("calico", lines)
    assert counts["allowed"] and counts["dropped"]
    assert counts == {family: series for family, series in floor_calico.count(lines).items() if series}


def test_filtered_lines_keep_the_counts() -> None:
    objects = flowgen.HubbleGenerator(seed=8).objects(4000, flowgen.DAY_SECONDS)
    filtered = flowgen.filtered_lines(objects)
    assert len(filtered) < len(objects) / 2
    assert _exporter_counts("hubble", filtered) == _exporter_counts("hubble", flowgen.encode(objects))
