"""The exposition never renders a value Prometheus cannot parse (checked by the real promtool)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from exporter.exposition import MetricFamily, render
from exporter.model import FAMILY_LABELS, Family
from exporter.store import SeriesStore

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")


def promtool_parses(text: bytes) -> str:
    """promtool's complaints about parsing (lint findings about names/help are not parse errors)."""
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30)
    return "" if b"parsing error" not in done.stdout + done.stderr else (done.stdout + done.stderr).decode()


def test_integers_beyond_float_range_render_as_inf() -> None:
    family = MetricFamily("netpol_exporter_events_lost", "counter", "Lost events.", ("source",))
    family.set(2 * 10**308, "hubble-file:/a")  # two absurd lost_events counts summed
    family.set(-(10**400), "hubble-file:/b")
    family.set(2**63 + 1, "hubble-file:/c")
    family.set(True, "hubble-file:/d")
    text = render([], [family])
    assert promtool_parses(text) == "", text
    assert b'{source="hubble-file:/a"} +Inf' in text and b'{source="hubble-file:/b"} -Inf' in text
    assert b'{source="hubble-file:/c"} 9.223372036854776e+18' in text
    assert b'{source="hubble-file:/d"} 1' in text


def test_a_label_value_that_is_not_valid_unicode_does_not_break_the_scrape() -> None:
    store = SeriesStore("netpol_dropped", "Drops.", FAMILY_LABELS[Family.DROPPED], max_series=10)
    store.add(("ns/p", "ingress", "ns/a\ud800", "ns", "ns/web", "ns", "80", "TCP", "POLICY_DENIED"), 1, now=0)
    text = render([store], [])
    assert promtool_parses(text) == "", text
    assert b'source="ns/a?"' in text
