"""The landing page groups recent denied flows, links them to Grafana, and keeps rows on one line in a
real browser (headless Chromium; skipped with the reason where it is not installed)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import aiohttp
import pytest

from exporter.config import Config
from exporter.pipeline import DeniedFlow
from exporter.service.demo import DemoSource
from exporter.service.landing import grafana_link, group_denied
from tests.service.helpers import running_service, wait_for

REPO = Path(__file__).resolve().parents[2]
README_PICTURE = REPO / "docs" / "img" / "landing.png"


def flow(t: float, port: str = "5432", source: str = "app/client", packets: int = 1) -> DeniedFlow:
    return DeniedFlow(t, "hubble-file:/x", source, "db/postgresql", port, "TCP", "db/default-deny-all",
                      "POLICY_DENIED", "ingress", packets)


def test_retransmissions_fall_into_one_group_with_first_and_last_seen() -> None:
    ring = [flow(10.0), flow(11.0), flow(12.5, packets=2), flow(13.0, port="6379"), flow(14.0, source="app/other")]
    groups = group_denied(ring)
    assert [(g.source, g.key[2], g.events, g.packets) for g in groups] == [
        ("app/other", "5432", 1, 1), ("app/client", "6379", 1, 1), ("app/client", "5432", 3, 4)]
    assert (groups[2].first_seen, groups[2].last_seen) == (10.0, 12.5)


def test_grafana_link_filters_the_dashboard() -> None:
    group = group_denied([flow(1.0)])[0]
    assert grafana_link("https://grafana.example.com/", group) == (
        "https://grafana.example.com/d/netpol-denied-flows/denied-flows-review?"
        "var-policy=db%2Fdefault-deny-all&var-source_namespace=app&var-destination_namespace=db")


def demo(pipeline):  # type: ignore[no-untyped-def]
    """The demo as `make demo` runs it: the replay, attributed with the bundled policies."""
    from exporter.netpol.flowattrib import attach_from_config
    from exporter.service.demo import DEMO_POLICIES

    attach_from_config(pipeline, Config(policies=[DEMO_POLICIES]))
    return [DemoSource(pipeline, speed=60.0)]


DENIED_FLOWS = 100


async def _fetch_demo_page(config: Config | None) -> str:
    async with running_service(demo, config=config) as (service, url), aiohttp.ClientSession() as http:
        await wait_for(lambda: len(service.pipeline.recent_denied) >= DENIED_FLOWS, timeout=60)
        async with http.get(url + "/") as resp:
            return await resp.text()


@functools.cache
def demo_page(grafana_url: str | None = "http://grafana.local:3000") -> str:
    """The landing page of a live demo replay (fetched once per test session)."""
    return asyncio.run(_fetch_demo_page(Config(grafana_url=grafana_url)))


def test_the_demo_page_groups_and_links() -> None:
    page = demo_page()
    rows = page.split("<table id=denied>")[1].split("</table>")[0].count("<tr") - 1
    assert 0 < rows < DENIED_FLOWS / 2  # retransmissions grouped: far fewer rows than flows
    assert 'href="http://grafana.local:3000/d/netpol-denied-flows/denied-flows-review?var-policy=' in page
    assert "<th>Grafana</th>" in page
    assert "temporal/temporal-history-policy" in page  # the bundled policies name the drops


async def test_no_grafana_column_without_a_grafana_url() -> None:
    from tests.service.helpers import FIXTURE_LINES, ListSource

    def fixture(pipeline):  # type: ignore[no-untyped-def]
        return [ListSource("test:fixture", pipeline, FIXTURE_LINES)]

    async with running_service(fixture) as (service, url), aiohttp.ClientSession() as http:
        await wait_for(lambda: len(service.pipeline.recent_denied) >= 2)
        async with http.get(url + "/") as resp:
            page = await resp.text()
    assert "<table id=denied>" in page and "Grafana" not in page


MEASURE = """<script>
window.addEventListener('load', () => {
  // Lines of text per cell: the distinct tops of the line boxes of the cell's contents.
  const lines = [...document.querySelectorAll('#denied td, #denied th')].map(cell => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
  });
  document.body.setAttribute('data-measure', JSON.stringify({cells: lines.length, most_lines: Math.max(...lines),
    rows: document.querySelectorAll('#denied tr').length, width: document.documentElement.scrollWidth}));
});
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (bash scripts/install-test-deps.sh installs Debian's chromium)")
    return found


def _headless(browser: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1280,1100", *args], capture_output=True, text=True, timeout=120)


def test_rows_stay_on_one_line_at_1280px_in_a_real_browser(tmp_path: Path) -> None:
    browser = _chromium()
    page = demo_page()
    html = tmp_path / "landing.html"
    html.write_text(page.replace("<meta http-equiv=refresh content=5>", "").replace("</body>", MEASURE + "</body>"))
    proc = _headless(browser, "--virtual-time-budget=2000", "--dump-dom", html.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    measured = json.loads(proc.stdout.split("data-measure='")[1].split("'")[0]) if "data-measure='" in proc.stdout \
        else json.loads(proc.stdout.split('data-measure="')[1].split('"')[0].replace("&quot;", '"'))
    assert measured["rows"] > 2
    assert measured["most_lines"] == 1, measured  # no cell wraps onto a second line
    assert measured["width"] <= 1280, measured  # nothing wider than the window


def test_screenshot_of_the_landing_page(tmp_path: Path) -> None:
    browser = _chromium()
    page = demo_page()
    html = tmp_path / "landing.html"
    html.write_text(page.replace("<meta http-equiv=refresh content=5>", ""))
    shot = tmp_path / "landing.png"
    proc = _headless(browser, f"--screenshot={shot}", html.as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 1100)
    assert len(data) > 20_000  # a rendered page, not a blank image
    if os.environ.get("NETPOL_REFRESH_SCREENSHOT"):
        shutil.copy(shot, README_PICTURE)  # NETPOL_REFRESH_SCREENSHOT=1 refreshes the README's picture
