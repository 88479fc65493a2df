"""Faults: a source that fails and a state dir that cannot be written are logged, measured, and survived."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from tests.service.helpers import FIXTURE_LINES, FlakySource, ListSource, running_service, wait_for


async def test_failing_source_is_restarted_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="netpol_exporter.service")
    sources = lambda p: [FlakySource("test:flaky", p, failures=1), ListSource("test:ok", p, FIXTURE_LINES)]  # noqa: E731
    async with running_service(sources) as (service, url), aiohttp.ClientSession() as http:
        flaky = service.sources[0]
        await wait_for(lambda: service.stats.source_failures.get("test:flaky") == 1)
        # still serving while the failed source waits to be restarted
        async with http.get(url + "/metrics") as resp:
            text = await resp.text()
        assert 'netpol_exporter_source_failures_total{source="test:flaky"} 1' in text
        assert 'netpol_exporter_source_up{source="test:flaky"} 0' in text
        async with http.get(url + "/readyz") as resp:
            assert resp.status == 503
            assert "source test:flaky is failed: RuntimeError: boom: the input went away" in (
                await resp.json())["not_ready"]
        await wait_for(lambda: flaky.status.state == "running", timeout=5)  # restarted after the backoff
        assert flaky.runs == 2  # type: ignore[attr-defined]
        async with http.get(url + "/readyz") as resp:
            assert resp.status == 200
    failed = [r for r in caplog.records if r.getMessage() == "source failed; restarting"]
    assert len(failed) == 1 and failed[0].source == "test:flaky"  # type: ignore[attr-defined]


async def test_unwritable_state_dir_is_reported_and_serving_continues(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="netpol_exporter.service")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state dir should be")
    state_dir = str(blocker / "state")
    async with running_service(lambda p: [ListSource("test:ok", p, FIXTURE_LINES)], state_dir=state_dir) as (
            service, url), aiohttp.ClientSession() as http:
        await wait_for(lambda: service.sources[0].stats.read > 0)
        async with http.get(url + "/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
    assert "netpol_exporter_state_dir_writable 0" in text
    assert 'netpol_exporter_events_read_total{source="test:ok"} 9' in text
    (record,) = [r for r in caplog.records if r.getMessage().startswith("state dir is not writable")]
    assert record.state_dir == state_dir and "Not a directory" in record.error  # type: ignore[attr-defined]


async def test_writable_state_dir_gauge(tmp_path: Path) -> None:
    async with running_service(lambda p: [ListSource("test:ok", p)], state_dir=str(tmp_path / "new")) as (
            _service, url), aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        assert "netpol_exporter_state_dir_writable 1" in await resp.text()
    assert (tmp_path / "new").is_dir()


async def test_sources_are_closed_on_stop() -> None:
    async with running_service(lambda p: [ListSource("test:a", p), ListSource("test:b", p)]) as (service, _url):
        await wait_for(lambda: all(s.status.state == "running" for s in service.sources))
    assert all(s.closed and s.status.state == "stopped" for s in service.sources)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("listen", "expected"), [
    ("0.0.0.0:10215", ("0.0.0.0", 10215)), ("[::1]:9", ("::1", 9)), (":10215", ("0.0.0.0", 10215)),
    ("localhost:0", ("localhost", 0)),
])
def test_split_listen(listen: str, expected: tuple[str, int]) -> None:
    from exporter.service.runtime import split_listen

    assert split_listen(listen) == expected
