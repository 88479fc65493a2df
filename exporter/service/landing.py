"""The landing page at `/`: sources and the most recent denied flows, self-contained HTML."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from exporter import __version__

if TYPE_CHECKING:
    from exporter.pipeline import DeniedFlow
    from exporter.service.runtime import Service

LANDING_DENIED_ROWS = 50
# The Denied flows review dashboard (dashboards/denied-flows-review.json): uid, slug, variables.
GRAFANA_DASHBOARD = "d/netpol-denied-flows/denied-flows-review"

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem;color:#1d232a}
h1{font-size:1.4rem;margin:0 0 .3rem} h2{font-size:1.1rem;margin-top:1.6rem}
table{border-collapse:collapse;font-size:.9rem} th,td{padding:.25rem .6rem;border-bottom:1px solid #dde2e8;
text-align:left;vertical-align:top} th{background:#f1f4f7}
.running{color:#176b2c;font-weight:600} .failed{color:#b3261e;font-weight:600}
.waiting,.reconnecting,.starting{color:#8a5a00;font-weight:600}
.muted{color:#66707a} code{background:#f1f4f7;padding:0 .2rem}
#denied td,#denied th{white-space:nowrap} td.num{text-align:right}
td.nowrap{white-space:nowrap}
.cut{display:inline-block;max-width:10.5rem;overflow:hidden;text-overflow:ellipsis;vertical-align:bottom}
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
            f"<td class=nowrap>{escape(_ago(info.get('last_event_time'), now))}</td>"
            f"<td class=nowrap>{'' if lag is None else f'{lag:.1f} s'}</td>"
            f"<td>{info['events_read']}</td><td>{info['events_counted']}</td><td>{info['events_invalid']}</td>"
            f"<td>{info.get('failures', 0)}</td>"
            "</tr>"
        )
    return _table(("source", "format", "state", "detail", "last event", "lag", "read", "counted", "invalid",
                   "restarts"), rows)


@dataclass
class DeniedGroup:
    """Recent denied flows with the same peers, port, protocol, direction, policy and reason."""

    key: tuple[str, str, str, str, str, str, str]
    first_seen: float
    last_seen: float
    events: int = 0
    packets: int = 0
    inputs: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return self.key[0]

    @property
    def destination(self) -> str:
        return self.key[1]

    @property
    def policy(self) -> str:
        return self.key[5]


def group_denied(flows: Iterable[DeniedFlow]) -> list[DeniedGroup]:
    """Groups of the ring's flows (retransmissions of one connection fall together), last seen first."""
    groups: dict[tuple[str, str, str, str, str, str, str], DeniedGroup] = {}
    for f in flows:
        key = (f.source, f.destination, f.destination_port, f.protocol, f.direction, f.policy, f.reason)
        group = groups.get(key)
        if group is None:
            group = groups[key] = DeniedGroup(key, f.time, f.time)
        group.first_seen = min(group.first_seen, f.time)
        group.last_seen = max(group.last_seen, f.time)
        group.events += 1
        group.packets += f.packets
        if f.source_name not in group.inputs:
            group.inputs += (f.source_name,)
    return sorted(groups.values(), key=lambda g: g.last_seen, reverse=True)


def _clock(seconds: float, now: float) -> str:
    """Time of day (UTC) for today's events, the date too for older ones: short enough for one line."""
    moment = datetime.fromtimestamp(seconds, UTC)
    if moment.date() == datetime.fromtimestamp(now, UTC).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _cut(text: str) -> str:
    """A name that may be long: one line, cut with an ellipsis, the whole name on hover."""
    return f"<span class=cut title=\"{escape(text)}\">{escape(text)}</span>"


def grafana_link(base: str, group: DeniedGroup) -> str:
    """The Denied flows review dashboard filtered to the group's policy and namespaces."""
    variables = {"var-policy": group.policy}
    for name, peer in (("source_namespace", group.source), ("destination_namespace", group.destination)):
        if "/" in peer:
            variables[f"var-{name}"] = peer.split("/", 1)[0]
    return f"{base.rstrip('/')}/{GRAFANA_DASHBOARD}?{urlencode(variables)}"


def _denied_table(service: Service, now: float) -> str:
    groups = group_denied(service.pipeline.recent_denied)[:LANDING_DENIED_ROWS]
    if not groups:
        return "<p class=muted>No denied flows seen yet.</p>"
    grafana = service.pipeline.config.grafana_url
    rows = []
    for g in groups:
        source, destination, port, protocol, direction, policy, reason = g.key
        link = (f"<td><a href=\"{escape(grafana_link(grafana, g))}\">dashboard</a></td>" if grafana else "")
        seen = _clock(g.last_seen, now)
        if g.first_seen != g.last_seen:
            seen = f"{_clock(g.first_seen, now)} – {seen}"
        rows.append(
            f"<tr title=\"input: {escape(', '.join(g.inputs))}\">"
            f"<td title=\"{escape(rfc3339(g.first_seen))} – {escape(rfc3339(g.last_seen))}\">{seen}</td>"
            f"<td class=num title=\"{g.events} events\">{g.packets}</td>"
            f"<td>{_cut(source)}</td><td>{_cut(destination)}</td>"
            f"<td>{escape(port)}/{escape(protocol)}</td><td>{escape(direction)}</td>"
            f"<td>{_cut(policy)}</td><td>{escape(reason)}</td>{link}"
            "</tr>"
        )
    headers = ("first – last seen (UTC)", "packets", "source", "destination", "port", "direction", "policy",
               "reason") + (("Grafana",) if grafana else ())
    return _table(headers, rows, table_id="denied")


def _table(headers: tuple[str, ...], rows: list[str], table_id: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    ident = f" id={table_id}" if table_id else ""
    return f"<table{ident}><tr>{head}</tr>{''.join(rows)}</table>"


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
        f"<h2>Recent denied flows</h2><p class=muted>The ring's last {service.pipeline.recent_denied.maxlen} "
        f"denied flows, grouped by peers, port, direction, policy and reason (retransmissions fall together); "
        f"the {LANDING_DENIED_ROWS} groups seen last, newest first. The page refreshes every 5 s.</p>"
        f"{_denied_table(service, now)}"
        "</body></html>"
    )
