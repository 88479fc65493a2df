"""The landing page at `/`: sources and the most recent denied flows, self-contained HTML."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING

from exporter import __version__

if TYPE_CHECKING:
    from exporter.service.runtime import Service

LANDING_DENIED_ROWS = 50

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem;color:#1d232a}
h1{font-size:1.4rem;margin:0 0 .3rem} h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;font-size:.9rem} th,td{padding:.25rem .6rem;border-bottom:1px solid #dde2e8;
text-align:left;vertical-align:top} th{background:#f1f4f7}
.running{color:#176b2c;font-weight:600} .failed{color:#b3261e;font-weight:600}
.waiting,.reconnecting,.starting{color:#8a5a00;font-weight:600}
.muted{color:#66707a} code{background:#f1f4f7;padding:0 .2rem}
"""


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ago(seconds: float | None, now: float) -> str:
    if not seconds:
        return "never"
    delta = max(0.0, now - seconds)
    text = f"{delta:.0f} s ago" if delta < 120 else f"{delta / 60:.0f} min ago"
    return f"{rfc3339(seconds)} ({text})"


def _sources_table(service: Service, now: float) -> str:
    if not service.sources:
        return "<p class=muted>No sources configured.</p>"
    rows = []
    for info in service.describe_sources():
        lag = info.get("lag_seconds")
        state = str(info["state"])
        rows.append(
            "<tr>"
            f"<td><code>{escape(str(info['source']))}</code></td>"
            f"<td>{escape(str(info['format']))}</td>"
            f"<td class={escape(state)}>{escape(state)}</td>"
            f"<td>{escape(str(info.get('detail') or ''))}</td>"
            f"<td>{escape(_ago(info.get('last_event_time'), now))}</td>"
            f"<td>{'' if lag is None else f'{lag:.1f} s'}</td>"
            f"<td>{info['events_read']}</td><td>{info['events_counted']}</td><td>{info['events_invalid']}</td>"
            f"<td>{info.get('failures', 0)}</td>"
            "</tr>"
        )
    return _table(("source", "format", "state", "detail", "last event", "lag", "read", "counted", "invalid",
                   "restarts"), rows)


def _denied_table(service: Service) -> str:
    ring = list(service.pipeline.recent_denied)[::-1][:LANDING_DENIED_ROWS]
    if not ring:
        return "<p class=muted>No denied flows seen yet.</p>"
    rows = []
    for f in ring:
        rows.append(
            "<tr>"
            f"<td>{escape(rfc3339(f.time))}</td><td>{escape(f.source)}</td><td>{escape(f.destination)}</td>"
            f"<td>{escape(f.destination_port)}</td><td>{escape(f.protocol)}</td><td>{escape(f.direction)}</td>"
            f"<td>{escape(f.policy)}</td><td>{escape(f.reason)}</td><td>{f.packets}</td>"
            f"<td class=muted>{escape(f.source_name)}</td>"
            "</tr>"
        )
    return _table(("time (UTC)", "source", "destination", "port", "protocol", "direction", "policy", "reason",
                   "packets", "input"), rows)


def _table(headers: tuple[str, ...], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def landing_page(service: Service) -> str:
    now = time.time()
    ready, problems = service.readiness()
    status = ("<span class=running>ready</span>" if ready else
              "<span class=failed>not ready</span>: " + escape("; ".join(problems)))
    kube = ""
    info = service.describe_enrichment()
    if info is not None:
        synced = "caches synced" if info["synced"] else "caches not synced yet"
        server = f" with {escape(str(info['server']))}" if info.get("server") else ""
        kube = f"<p>Kubernetes enrichment{server}: {synced}.</p>"
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        "<meta http-equiv=refresh content=5>"
        "<title>netpol-exporter</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>netpol-exporter</h1><p class=muted>version {escape(__version__)} · {status}</p>"
        "<p><a href=metrics>/metrics</a> · <a href=api/v1/denied-flows>/api/v1/denied-flows</a> · "
        "<a href=api/v1/sources>/api/v1/sources</a> · <a href=readyz>/readyz</a> · <a href=healthz>/healthz</a></p>"
        f"{kube}<h2>Sources</h2>{_sources_table(service, now)}"
        f"<h2>Recent denied flows</h2><p class=muted>Newest first; the last {LANDING_DENIED_ROWS} of a ring of "
        f"{service.pipeline.recent_denied.maxlen}. The page refreshes every 5 s.</p>{_denied_table(service)}"
        "</body></html>"
    )
