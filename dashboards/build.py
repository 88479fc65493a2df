#!/usr/bin/env python3
"""Build the Grafana dashboards of netpol-exporter (dashboards/*.json) from one description.

    python dashboards/build.py          # write the JSON files next to this script
    python dashboards/build.py --check  # exit 1 when a committed file differs from what this builds

Classic dashboard JSON model (schemaVersion 39), loadable by file provisioning, the Grafana sidecar
and manual import: no `__inputs`, every panel on the `${datasource}` template variable.
Standard library only, so the script runs anywhere Python 3.11 does.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39
TAGS = ["netpol-exporter", "network-policy"]
DS: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}

OVERVIEW_UID = "netpol-overview"
OVERVIEW_TITLE = "Network policy overview"
REVIEW_UID = "netpol-denied-flows"
REVIEW_TITLE = "Denied flows review"


# --- what the metrics count: shared wording for panel descriptions ------------------------------------
COUNT_DENIED = (
    "Counts denied packets: Cilium/Hubble reports each packet a policy drops, and each request an L7 "
    "policy denies (reason L7_POLICY_DENIED: one per request, not per packet); Calico adds "
    "packets_in + packets_out of each deny flow-log record. A deny is reported only by the side that "
    "enforced it, so nothing is counted twice. direction=forward: traffic a host forwards (Calico "
    "host-endpoint policies with applyOnForward), charged to no namespace."
)
COUNT_ALLOWED = (
    "Hubble counts ONE per new connection per enforcing side (policy verdicts are not emitted for "
    "replies or established packets); Calico counts packets (packets_in + packets_out). Allowed "
    "pod-to-pod traffic is reported by both ends (egress at the source, ingress at the destination): "
    "the direction label keeps them apart — sum one direction to count a flow once."
)
COUNT_AUDIT = (
    "Counts traffic a policy in audit mode (Cilium) or a staged policy (Calico) would have denied; "
    "the traffic itself was allowed."
)
POLICY_VALUES = (
    "policy is namespace/name (Calico non-default tiers: namespace/tier.name); default-deny = "
    "denied with no policy named (isolated endpoint), default-allow = allowed with no policy "
    "(endpoint not isolated), unknown = another unnamed drop."
)
RANGE_NOTE = (
    "Totals over the dashboard's time range (increase over $__range): a flow series first seen inside "
    "the range counts from its first scrape, so totals are a lower bound."
)


# --- query helpers ---------------------------------------------------------------------------------

JOB = 'job=~"$job"'
FLOW_VARIABLES = (
    'source_namespace=~"$source_namespace"',
    'destination_namespace=~"$destination_namespace"',
    'policy=~"$policy"',
)


def flows(family: str, *extra: str) -> str:
    """A raw flow family with every dashboard variable applied, plus `extra` matchers."""
    matchers = ", ".join((JOB, *FLOW_VARIABLES, *extra))
    return f"networkpolicy_{family}_packets_total{{{matchers}}}"


def flow_rule(family: str) -> str:
    """The flow-level recording rule (job plus the flow labels without reason), every variable applied."""
    matchers = ", ".join((JOB, *FLOW_VARIABLES))
    return f"flow:networkpolicy_{family}:increase5m{{{matchers}}}"


def policy_rule(family: str) -> str:
    """The per policy, direction and namespace pair rate recording rule (job kept), every variable applied."""
    matchers = ", ".join((JOB, *FLOW_VARIABLES))
    return f"policy_direction_namespaces:networkpolicy_{family}_packets:rate5m{{{matchers}}}"


def rate(selector: str) -> str:
    return f"rate({selector}[$__rate_interval])"


def increase_over_range(selector: str) -> str:
    return f"increase({selector}[$__range])"


def self_metric(name: str) -> str:
    return f"netpol_exporter_{name}{{{JOB}}}"


def health_rule(name: str) -> str:
    return f"{name}{{{JOB}}}"


def allowed_once() -> str:
    """Allowed traffic per second, each flow counted once: the destination's ingress report (and the
    forwarding host's only report), plus egress reports to destinations that are not pods (world, host
    ...), which have no ingress report."""
    ingress = rate(flows("allowed", 'direction=~"ingress|forward|unknown"'))
    egress = rate(flows("allowed", 'direction="egress"', 'destination_namespace=""'))
    return f"sum({ingress} or {egress})"


# --- panel model ----------------------------------------------------------------------------------


@dataclass
class Target:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False

    def render(self, ref_id: str) -> dict[str, Any]:
        return {
            "datasource": DS,
            "editorMode": "code",
            "expr": self.expr,
            "format": "table" if self.table else "time_series",
            "instant": self.instant,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "refId": ref_id,
        }


@dataclass
class Link:
    title: str
    url: str

    def render(self) -> dict[str, Any]:
        return {"targetBlank": False, "title": self.title, "url": self.url}


@dataclass
class Panel:
    kind: str  # timeseries | stat | table | row
    title: str
    width: int = 24
    height: int = 8
    description: str = ""
    targets: list[Target] = field(default_factory=list)
    unit: str = "short"
    links: list[Link] = field(default_factory=list)  # data links on every field
    overrides: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    transformations: list[dict[str, Any]] = field(default_factory=list)


def row(title: str) -> Panel:
    return Panel("row", title, height=1)


def timeseries(title: str, description: str, targets: list[Target], unit: str, *, width: int = 12,
               height: int = 9, stack: bool = False, links: list[Link] | None = None,
               overrides: list[dict[str, Any]] | None = None, legend_right: bool = False) -> Panel:
    return Panel(
        "timeseries", title, width, height, description, targets, unit, links or [], overrides or [],
        options={
            "legend": {
                "calcs": ["mean", "max"],
                "displayMode": "table",
                "placement": "right" if legend_right else "bottom",
                "showLegend": True,
                "sortBy": "Max",
                "sortDesc": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        defaults={
            "min": 0,
            "custom": {
                "drawStyle": "line",
                "fillOpacity": 20 if stack else 0,
                "lineWidth": 1,
                "showPoints": "never",
                "spanNulls": False,
                "stacking": {"group": "A", "mode": "normal" if stack else "none"},
            },
        },
    )


def stat(title: str, description: str, targets: list[Target], unit: str, *, width: int = 6,
         height: int = 4, red_from: float | None = None, graph: bool = True,
         links: list[Link] | None = None) -> Panel:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if red_from is not None:
        steps.append({"color": "red", "value": red_from})
    return Panel(
        "stat", title, width, height, description, targets, unit, links or [],
        options={
            "colorMode": "value",
            "graphMode": "area" if graph else "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": "auto",
        },
        # counts over a range come from increase(), which extrapolates: show whole numbers
        defaults={"thresholds": {"mode": "absolute", "steps": steps}, **({"decimals": 0} if unit == "short" else {})},
    )


def column(name: str, display: str, **properties: Any) -> dict[str, Any]:
    """A table field override: display name, plus optional unit/width/links."""
    props = [{"id": "displayName", "value": display}]
    for key, value in properties.items():
        props.append({"id": {"width": "custom.width"}.get(key, key), "value": value})
    return {"matcher": {"id": "byName", "options": name}, "properties": props}


def table(title: str, description: str, targets: list[Target], columns: list[str], *,
          value_title: str, unit: str = "short", width: int = 24, height: int = 10,
          overrides: list[dict[str, Any]] | None = None) -> Panel:
    """An instant table of label columns (in order) and one value column, sorted by value."""
    order = {name: i for i, name in enumerate([*columns, "Value"])}
    return Panel(
        "table", title, width, height, description, targets, unit, [],
        [*(overrides or []), column("Value", value_title, decimals=0)],
        options={
            "cellHeight": "sm",
            "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
            "showHeader": True,
            "sortBy": [{"desc": True, "displayName": value_title}],
        },
        defaults={"custom": {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True}},
        transformations=[
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "indexByName": order,
                    "renameByName": {},
                },
            }
        ],
    )


# --- links ----------------------------------------------------------------------------------------

CARRY_VARS = "${datasource:queryparam}&${job:queryparam}"
CARRY_NAMESPACES = "${source_namespace:queryparam}&${destination_namespace:queryparam}"


def review_url(policy: str) -> str:
    """The Denied flows review, keeping data source, job, namespaces and time, for one policy."""
    return (f"/d/{REVIEW_UID}/denied-flows-review?{CARRY_VARS}&{CARRY_NAMESPACES}"
            f"&var-policy={policy}&${{__url_time_range}}")


def dashboard_links() -> list[dict[str, Any]]:
    """Both dashboards carry the tag, so each links to the other, keeping variables and time."""
    return [
        {
            "asDropdown": False,
            "icon": "dashboard",
            "includeVars": True,
            "keepTime": True,
            "tags": ["netpol-exporter"],
            "targetBlank": False,
            "title": "netpol-exporter",
            "type": "dashboards",
        }
    ]


# --- template variables ---------------------------------------------------------------------------

FLOW_SERIES = '{__name__=~"networkpolicy_(dropped|allowed|audit)_packets_total", job=~"$job"}'


def query_variable(name: str, label: str, query: str, all_value: str, description: str) -> dict[str, Any]:
    return {
        "allValue": all_value,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "datasource": DS,
        "definition": query,
        "description": description,
        "hide": 0,
        "includeAll": True,
        "label": label,
        "multi": True,
        "name": name,
        "options": [],
        "query": query,  # the classic string form: every Grafana version reads it
        "refresh": 2,
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


def variables() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "current": {},
            "description": "The Prometheus data source that scrapes netpol-exporter.",
            "hide": 0,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "regex": "",
            "skipUrlSync": False,
            "type": "datasource",
        },
        query_variable("job", "Job", "label_values(netpol_exporter_build_info, job)", ".+",
                       "Scrape job(s) of netpol-exporter."),
        # allValue .* (not .+): world, host and other non-pod peers have an empty namespace.
        query_variable("source_namespace", "Source namespace",
                       f"label_values({FLOW_SERIES}, source_namespace)", ".*",
                       "Namespace of the source pod; empty for non-pod peers (world, host ...)."),
        query_variable("destination_namespace", "Destination namespace",
                       f"label_values({FLOW_SERIES}, destination_namespace)", ".*",
                       "Namespace of the destination pod; empty for non-pod peers (world, host ...)."),
        query_variable("policy", "Policy", f"label_values({FLOW_SERIES}, policy)", ".*",
                       "The deciding policy: namespace/name, a cluster-wide name, default-deny, "
                       "default-allow, unknown or reserved:(name)."),
    ]
    return out


# --- the two dashboards ---------------------------------------------------------------------------

POLICY_LINK = Link("Denied flows of ${__field.labels.policy}", review_url("${__field.labels.policy}"))
FLOW_COLUMNS = ["source", "destination", "destination_port", "protocol", "policy", "reason", "direction"]
FIVE_MINUTES = 300
# Every alert of rules/netpol-exporter.alerts.yml matches (a test checks it).
ALERT_NAMES = "NetworkPolicy.*|UnexpectedNetworkTraffic|NetpolExporter.*"
ALERT_COLUMNS = ["alertname", "severity", "policy", "namespace", "source", "destination", "destination_port",
                 "instance"]
ALERTS_FIRING = 'ALERTS{alertstate="firing", alertname=~"$alerts"}'
LOST_EVENTS_RULE = "instance_source:netpol_exporter_hubble_lost_events:rate5m"
SERIES_RATIO_RULE = "instance_family:netpol_exporter_series_per_limit:ratio"


def flow_column_overrides(policy_link_title: str | None) -> list[dict[str, Any]]:
    """Column titles; with a link title, the Policy cells drill down to that policy's denied flows."""
    policy_link = {}
    if policy_link_title:
        policy_link = {"links": [Link(policy_link_title, review_url("${__value.raw}")).render()]}
    return [
        column("source", "Source"),
        column("destination", "Destination"),
        column("destination_port", "Port", width=70),
        column("protocol", "Protocol", width=80),
        column("policy", "Policy", **policy_link),
        column("reason", "Reason"),
        column("direction", "Direction", width=80),
    ]


def policy_direction_panel(family: str, title: str, counted: str, unit: str,
                           links: list[Link] | None = None) -> Panel:
    return timeseries(
        title,
        f"Per second by deciding policy and direction, 5-minute average from the recording rule "
        f"policy_direction_namespaces:networkpolicy_{family}_packets:rate5m (cheap over long ranges; it "
        f"keeps the job and both namespaces, so every variable filters this panel). "
        f"{counted} {POLICY_VALUES}" + (" Click a series for that policy's denied flows." if links else ""),
        [Target(f"sum by (policy, direction) ({policy_rule(family)})", "{{policy}} ({{direction}})")],
        unit, links=links,
    )


def overview_panels() -> list[Panel]:
    return [
        row("Verdicts"),
        stat("Denied packets/s", f"Packets denied per second, all selected flows. {COUNT_DENIED}",
             [Target(f"sum({rate(flows('dropped'))})")], "pps", red_from=1),
        stat("Denied packets in range", f"Packets denied over the time range. {COUNT_DENIED} {RANGE_NOTE}",
             [Target(f"sum({increase_over_range(flows('dropped'))})", instant=True)], "short",
             red_from=1, graph=False),
        stat("Allowed/s (each flow once)",
             "Allowed traffic per second, each flow counted once: ingress and forward reports plus egress "
             f"reports to non-pod destinations. {COUNT_ALLOWED}",
             [Target(allowed_once())], "cps"),
        stat("Would be denied (audit) in range", f"{COUNT_AUDIT} {RANGE_NOTE}",
             [Target(f"sum({increase_over_range(flows('audit'))})", instant=True)], "short",
             red_from=1, graph=False),
        policy_direction_panel("dropped", "Denied by policy and direction", COUNT_DENIED, "pps",
                               links=[POLICY_LINK]),
        policy_direction_panel("allowed", "Allowed by policy and direction", COUNT_ALLOWED, "cps"),
        table(
            "Top denied source → destination:port",
            "The 10 source → destination:port pairs with the most denied packets over the time range. "
            f"{COUNT_DENIED} {RANGE_NOTE} Click a policy for its flows.",
            [Target("topk(10, sum by (source, destination, destination_port, protocol, policy) ("
                    f"{increase_over_range(flows('dropped'))}) > 0)", instant=True, table=True)],
            ["source", "destination", "destination_port", "protocol", "policy"],
            value_title="Packets", width=12, height=10,
            overrides=flow_column_overrides("Denied flows of ${__value.raw}"),
        ),
        timeseries(
            "Allowed traffic to unexpected ports",
            "Allowed traffic in the preceding 5 minutes to a destination port outside the expected set, "
            "from the recording rule flow:networkpolicy_allowed_packets_unexpected_port:increase5m — the "
            "same rule the UnexpectedNetworkTraffic alert reads; the expected ports are defined once, in "
            "destination_port:networkpolicy_expected_port:info (see docs/alerting.md). Portless protocols "
            f"(ICMP) never show here. {COUNT_ALLOWED}",
            [Target("sum by (source, destination, destination_port, protocol) ("
                    f"{flow_rule('allowed_packets_unexpected_port')})",
                    "{{source}} → {{destination}}:{{destination_port}}/{{protocol}}")],
            "short", width=12, height=10, legend_right=False,
        ),
        table(
            "Alerts firing",
            "Alerts of the netpol-exporter pack (rules/netpol-exporter.alerts.yml) firing now in this "
            "Prometheus, from its ALERTS series; the labels an alert carries depend on the alert (policy "
            "for NetworkPolicyViolation, the flow for UnexpectedNetworkTraffic, instance/source for the "
            "exporter's own). Empty when all is quiet.",
            [Target(f"sum by ({', '.join(ALERT_COLUMNS)}) ({ALERTS_FIRING})", instant=True, table=True)],
            ALERT_COLUMNS, value_title="Series", height=6,
            overrides=[column("alertname", "Alert"), column("severity", "Severity"), column("policy", "Policy"),
                       column("namespace", "Namespace"), column("source", "Source"),
                       column("destination", "Destination"), column("destination_port", "Port", width=70),
                       column("instance", "Instance")],
        ),
        row("Exporter health"),
        timeseries(
            "Sources up",
            "1 while a source (flow-log file, stdin, Hubble Relay, Goldmane push) is connected or "
            "readable, per exporter instance.",
            [Target(f"max by (instance, source) ({self_metric('source_up')})", "{{instance}} {{source}}")],
            "none", width=8, height=8,
        ),
        timeseries(
            "Event lag",
            "Seconds since the last event read per source (the event's own time when it carries one). "
            "Grows when a source stalls or falls behind.",
            [Target(f"max by (instance, source) (time() - {self_metric('last_event_timestamp_seconds')})",
                    "{{instance}} {{source}}")],
            "s", width=8, height=8,
        ),
        timeseries(
            "Hubble lost events",
            "Events Hubble reports it lost (lost_events.num_events_lost) per second, 5-minute average: its "
            "ring buffer or exporter overflowed, so flows are missing from the counts.",
            [Target(f"sum by (instance, source) ({health_rule(LOST_EVENTS_RULE)})", "{{instance}} {{source}}")],
            "cps", width=8, height=8,
        ),
        timeseries(
            "Events by outcome",
            "Events read per second (5-minute average) and what became of them: counted into a flow family, "
            "ignored (traces, L7, replies, non-policy drops, paired drop events) or invalid (malformed lines).",
            [Target(f"sum({health_rule(f'instance_source:netpol_exporter_events_{kind}:rate5m')})", kind)
             for kind in ("read", "counted", "ignored", "invalid")],
            "cps", width=8, height=8,
        ),
        timeseries(
            "Series against the cap",
            "Live series per flow family as a share of the configured cap (series.max_per_family). At 100 % "
            "new label sets fold into `__overflow__` series: totals stay exact but detail is lost. Absent "
            "when no cap is configured.",
            [Target(f"max by (instance, family) ({health_rule(SERIES_RATIO_RULE)})", "{{instance}} {{family}}")],
            "percentunit", width=8, height=8,
        ),
        timeseries(
            "Live series and folds",
            "Live series per flow family, and increments per second folded into `__overflow__` series "
            "by the cap (5-minute average; should stay 0).",
            [Target(f"sum by (family) ({self_metric('series')})", "{{family}} series"),
             Target(f"sum by (family) ({health_rule('instance_family:netpol_exporter_series_folded:rate5m')})",
                    "{{family}} folded/s")],
            "short", width=8, height=8,
        ),
    ]


def review_panels() -> list[Panel]:
    dropped = flows("dropped")
    flow_keys = ", ".join(FLOW_COLUMNS)
    return [
        stat("Denied packets", f"Packets denied over the time range. {COUNT_DENIED} {RANGE_NOTE}",
             [Target(f"sum({increase_over_range(dropped)})", instant=True)], "short",
             red_from=1, graph=False),
        stat("Distinct denied flows", "Distinct denied flows (source, destination, port, protocol, policy, reason, "
             f"direction) with at least one denied packet over the time range. {COUNT_DENIED} {RANGE_NOTE}",
             [Target(f"count(sum by ({flow_keys}) ({increase_over_range(dropped)}) > 0)", instant=True)],
             "short", red_from=1, graph=False),
        stat("Policies denying", "Distinct policies that denied at least one packet over the time range. "
             f"{POLICY_VALUES} {COUNT_DENIED}",
             [Target(f"count(sum by (policy) ({increase_over_range(dropped)}) > 0)", instant=True)],
             "short", graph=False),
        stat("Denied packets/s", f"Packets denied per second, all selected flows. {COUNT_DENIED}",
             [Target(f"sum({rate(dropped)})")], "pps", red_from=1),
        table(
            "Denied flows",
            f"Every denied flow over the time range with its packet count. {COUNT_DENIED} {POLICY_VALUES} "
            f"{RANGE_NOTE} Click a policy to review only its flows.",
            [Target(f"sum by ({flow_keys}) ({increase_over_range(dropped)}) > 0", instant=True, table=True)],
            FLOW_COLUMNS, value_title="Packets", height=14,
            overrides=flow_column_overrides("Only flows denied by ${__value.raw}"),
        ),
        timeseries(
            "Denied by namespace pair",
            "Denied packets per second by source namespace → destination namespace (empty = not a pod: "
            "world, host ...), 5-minute average from the recording rule flow:networkpolicy_dropped_packets:"
            f"increase5m (a flow first seen inside the 5 minutes counts in full). {COUNT_DENIED}",
            [Target(f"sum by (source_namespace, destination_namespace) ({flow_rule('dropped_packets')})"
                    f" / {FIVE_MINUTES}", "{{source_namespace}} → {{destination_namespace}}")],
            "pps",
        ),
        timeseries(
            "Denied by reason",
            "Denied packets per second by drop reason (POLICY_DENIED; POLICY_DENY for deny rules; "
            f"AUTH_REQUIRED for mutual-auth policies). {COUNT_DENIED}",
            [Target(f"sum by (reason) ({rate(dropped)})", "{{reason}}")], "pps",
        ),
        table(
            "Would-be-denied flows (audit / staged)",
            f"{COUNT_AUDIT} Flows over the time range with their counts. {RANGE_NOTE}",
            [Target(f"sum by ({flow_keys}) ({increase_over_range(flows('audit'))}) > 0",
                    instant=True, table=True)],
            FLOW_COLUMNS, value_title="Packets", height=8,
            overrides=flow_column_overrides(None),
        ),
    ]




# --- rendering ------------------------------------------------------------------------------------


def layout(panels: list[Panel]) -> Iterator[tuple[Panel, dict[str, int]]]:
    """Place panels left to right in rows of 24 columns; a row panel starts a new line."""
    x = y = line_height = 0
    for panel in panels:
        if panel.kind == "row" or x + panel.width > 24:
            x, y, line_height = 0, y + line_height, 0
        yield panel, {"h": panel.height, "w": panel.width, "x": x, "y": y}
        if panel.kind == "row":
            y += panel.height
            continue
        x += panel.width
        line_height = max(line_height, panel.height)


def render_panel(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, Any]:
    if panel.kind == "row":
        return {"collapsed": False, "gridPos": grid, "id": panel_id, "panels": [], "title": panel.title,
                "type": "row"}
    defaults: dict[str, Any] = {"color": {"mode": "palette-classic"}, **panel.defaults, "unit": panel.unit}
    if panel.links:
        defaults["links"] = [link.render() for link in panel.links]
    if "thresholds" not in defaults:
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": "green", "value": None}]}
    out: dict[str, Any] = {
        "datasource": DS,
        "description": panel.description,
        "fieldConfig": {"defaults": defaults, "overrides": panel.overrides},
        "gridPos": grid,
        "id": panel_id,
        "options": panel.options,
        "targets": [t.render(chr(ord("A") + i)) for i, t in enumerate(panel.targets)],
        "title": panel.title,
        "type": panel.kind,
    }
    if panel.transformations:
        out["transformations"] = panel.transformations
    return out


def dashboard(uid: str, title: str, description: str, panels: list[Panel],
              templating: list[dict[str, Any]]) -> dict[str, Any]:
    rendered = [render_panel(p, i, grid) for i, (p, grid) in enumerate(layout(panels), start=1)]
    return {
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        }]},
        "description": description,
        "editable": False,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": dashboard_links(),
        "panels": rendered,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": TAGS,
        "templating": {"list": templating},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


def alerts_variable() -> dict[str, Any]:
    return {
        "description": "Regular expression of the alert names the Alerts firing panel shows.",
        "hide": 2,
        "label": "Alerts",
        "name": "alerts",
        "query": ALERT_NAMES,
        "skipUrlSync": True,
        "type": "constant",
    }


def build() -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON model."""
    return {
        "network-policy-overview.json": dashboard(
            OVERVIEW_UID, OVERVIEW_TITLE,
            "Network-policy verdicts from Cilium Hubble and Calico flow logs (netpol-exporter): drops and "
            "allows by policy, top denied flows, unexpected ports, alerts and the exporter's health.",
            overview_panels(),
            [*variables(), alerts_variable()],
        ),
        "denied-flows-review.json": dashboard(
            REVIEW_UID, REVIEW_TITLE,
            "Every flow a network policy denied over the selected range, by source, destination, port, "
            "protocol, policy and reason (netpol-exporter).",
            review_panels(),
            variables(),
        ),
    }


def render(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail when a committed file is out of date")
    parser.add_argument("--out", type=Path, default=HERE, help="output directory (default: dashboards/)")
    args = parser.parse_args(argv)
    stale = []
    for name, model in build().items():
        path = args.out / name
        text = render(model)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print("out of date (run python dashboards/build.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
