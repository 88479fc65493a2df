"""A linter for Grafana dashboard JSON: Grafana's dashboard-linter rules, reimplemented, plus the
project's own checks of the JSON model.

Rules with dashboard-linter's names follow its documented behaviour (github.com/grafana/dashboard-linter,
docs/rules/*.md); where its implementation is laxer than its documentation, the documentation wins.
`netpol-*` rules are this project's. Exclusions use dashboard-linter's `.lint` file format:

    exclusions:
      target-job-rule:
        reason: why (required here)
        entries:                      # optional; without entries the rule is off for every dashboard
          - dashboard: Network policy overview
            panel: Alerts firing
            targetIdx: 0              # optional
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.dashboards import promql_ast as pq

Json = dict[str, Any]

# Panel types each dashboard-linter rule looks at.
QUERY_PANELS = {"singlestat", "graph", "table", "stat", "state-timeline", "timeseries"}
UNIT_PANELS = {"stat", "singlestat", "graph", "table", "timeseries", "gauge"}
DESCRIBED_PANELS = {"stat", "singlestat", "graph", "table", "timeseries", "gauge"}
DATASOURCE_PANELS = {"singlestat", "graph", "table", "timeseries", "stat", "gauge", "state-timeline"}
MIN_SCHEMA_VERSION = 36

# Grafana unit ids (packages/grafana-data/src/valueFormats/categories.ts), the ones a network or
# exporter dashboard can use: misc, counts and throughput, data, data rate, time, dates, booleans.
VALID_UNITS = {
    "none", "string", "short", "percent", "percentunit", "humidity", "dB", "hex0x", "hex", "sci", "locale",
    "pixel", "bytes", "decbytes", "bits", "decbits", "kbytes", "deckbytes", "mbytes", "decmbytes", "gbytes",
    "decgbytes", "tbytes", "dectbytes", "pbytes", "decpbytes", "pps", "binBps", "Bps", "binbps", "bps",
    "KiBs", "Kibits", "KBs", "Kbits", "MiBs", "Mibits", "MBs", "Mbits", "GiBs", "Gibits", "GBs", "Gbits",
    "hertz", "ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations", "dthms", "dtdhms",
    "timeticks", "clockms", "clocks", "cps", "ops", "reqps", "rps", "wps", "iops", "cpm", "opm", "rpm", "wpm",
    "dateTimeAsIso", "dateTimeAsIsoNoDateIfToday", "dateTimeAsUS", "dateTimeAsUSNoDateIfToday",
    "dateTimeAsLocal", "dateTimeAsLocalNoDateIfToday", "dateTimeAsSystem", "dateTimeFromNow",
    "bool", "bool_yes_no", "bool_on_off",
}

# Grafana's global variables; interval-like ones become durations before parsing.
INTERVAL_VARIABLES = ("__rate_interval", "__interval", "__range", "__interval_ms", "__range_ms", "__range_s")
GLOBAL_VARIABLES = {
    *INTERVAL_VARIABLES, "__dashboard", "__from", "__to", "__name", "__org", "__user", "__timeFilter",
    "timeFilter", "__all",
}
# Variables only data links know (https://grafana.com/docs/grafana/latest/panels-visualizations/
# configure-data-links/): field, series, value and data references plus the URL helpers.
DATA_LINK_VARIABLES = {"__field", "__series", "__value", "__data", "__url_time_range", "__url", "__all_variables"}
# A distinct duration per interval variable, so a rule can tell which one a range used.
MAGIC_SECONDS = {name: 11277964 + i for i, name in enumerate(INTERVAL_VARIABLES)}

VARIABLE_RE = re.compile(r"\$(\w+)|\$\{([^}:]+)(?::[^}]*)?\}|\[\[([^\]:]+)(?::[^\]]*)?\]\]")
QUOTED_RE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


@dataclass(frozen=True)
class Finding:
    rule: str
    dashboard: str
    message: str
    panel: str = ""
    target_idx: int | None = None

    def __str__(self) -> str:
        where = f"dashboard {self.dashboard!r}"
        if self.panel:
            where += f", panel {self.panel!r}"
        if self.target_idx is not None:
            where += f", target {self.target_idx}"
        return f"[{self.rule}] {where}: {self.message}"


# --- traversal and helpers --------------------------------------------------------------------


def panels(dashboard: Json) -> Iterator[Json]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def templating(dashboard: Json) -> list[Json]:
    return list(dashboard.get("templating", {}).get("list", []))


def template(dashboard: Json, name: str) -> Json | None:
    return next((t for t in templating(dashboard) if t.get("name") == name), None)


def datasource_uid(value: Any) -> str:
    """A panel/target/variable datasource: a {type, uid} object or, in old models, a bare string."""
    if isinstance(value, dict):
        return str(value.get("uid", ""))
    return "" if value is None else str(value)


def variable_query(var: Json) -> str:
    query = var.get("query", "")
    return str(query.get("query", "")) if isinstance(query, dict) else str(query)


def expand(expr: str) -> str:
    """Replace Grafana variables outside quoted strings with parseable placeholders (intervals become
    distinctive durations); variables inside label values stay as text, where any value parses."""
    out: list[str] = []
    pos = 0
    for quoted in QUOTED_RE.finditer(expr):
        out.append(VARIABLE_RE.sub(_placeholder, expr[pos:quoted.start()]))
        out.append(quoted.group())
        pos = quoted.end()
    out.append(VARIABLE_RE.sub(_placeholder, expr[pos:]))
    return "".join(out)


def _placeholder(match: re.Match[str]) -> str:
    name = next(g for g in match.groups() if g)
    if name in MAGIC_SECONDS:
        return f"{MAGIC_SECONDS[name]}s"
    return "var_" + re.sub(r"\W", "_", name)


def referenced_variables(text: str) -> set[str]:
    return {next(g for g in m.groups() if g).split(".")[0] for m in VARIABLE_RE.finditer(text)}


def parse_target(expr: str) -> pq.Node:
    return pq.parse(expand(expr))


# --- rule registry ----------------------------------------------------------------------------

DashboardRule = Callable[[Json], Iterator[Finding]]
RULES: dict[str, DashboardRule] = {}


def rule(name: str) -> Callable[[DashboardRule], DashboardRule]:
    def register(fn: DashboardRule) -> DashboardRule:
        RULES[name] = fn
        return fn
    return register


def prometheus_dashboard(d: Json) -> bool:
    ds = [t for t in templating(d) if t.get("type") == "datasource"]
    return bool(ds) and ds[0].get("query") == "prometheus"


def targets(d: Json) -> Iterator[tuple[Json, int, Json]]:
    for p in panels(d):
        if p.get("type") in QUERY_PANELS:
            for i, t in enumerate(p.get("targets") or []):
                yield p, i, t


def target_finding(name: str, d: Json, p: Json, i: int, message: str) -> Finding:
    return Finding(name, d.get("title", ""), message, p.get("title", ""), i)


# --- dashboard rules --------------------------------------------------------------------------


@rule("template-datasource-rule")
def template_datasource(d: Json) -> Iterator[Finding]:
    title = d.get("title", "")
    ds = [t for t in templating(d) if t.get("type") == "datasource"]
    if not ds:
        yield Finding("template-datasource-rule", title, "does not have a templated data source")
    for t in ds:
        kind = str(t.get("query", ""))
        names = {f"{kind.lower()}_datasource"} | ({"datasource"} if len(ds) == 1 else set())
        labels = {f"{kind.title()} data source"} | ({"Data source"} if len(ds) == 1 else set())
        if kind not in ("prometheus", "loki"):
            yield Finding("template-datasource-rule", title, f"data source variable queries {kind!r}, "
                          "should be 'prometheus' or 'loki'")
        if t.get("name") not in names:
            yield Finding("template-datasource-rule", title,
                          f"data source variable is named {t.get('name')!r}, should be one of {sorted(names)}")
        if t.get("label") not in labels:
            yield Finding("template-datasource-rule", title,
                          f"data source variable is labeled {t.get('label')!r}, should be one of {sorted(labels)}")


def check_label_template(d: Json, name: str, rule_name: str) -> Iterator[Finding]:
    title = d.get("title", "")
    if not prometheus_dashboard(d):
        return
    t = template(d, name)
    if t is None:
        yield Finding(rule_name, title, f"is missing the {name} template")
        return
    if datasource_uid(t.get("datasource")) not in ("$datasource", "${datasource}"):
        yield Finding(rule_name, title, f"{name} template should use datasource '$datasource', "
                      f"uses {datasource_uid(t.get('datasource'))!r}")
    if t.get("type") != "query":
        yield Finding(rule_name, title, f"{name} template should be a Prometheus query, is {t.get('type')!r}")
    if t.get("label") != name.title():
        yield Finding(rule_name, title, f"{name} template should be labeled {name.title()!r}, is {t.get('label')!r}")
    if not t.get("multi"):
        yield Finding(rule_name, title, f"{name} template should be a multi select")
    if t.get("allValue") != ".+":
        yield Finding(rule_name, title, f"{name} template allValue should be '.+', is {t.get('allValue')!r}")


@rule("template-job-rule")
def template_job(d: Json) -> Iterator[Finding]:
    yield from check_label_template(d, "job", "template-job-rule")


@rule("template-instance-rule")
def template_instance(d: Json) -> Iterator[Finding]:
    yield from check_label_template(d, "instance", "template-instance-rule")


LABEL_QUERY_RE = re.compile(r"^\s*(label_names|label_values|metrics|query_result)\s*\((.*)\)\s*$", re.S)


@rule("template-label-promql-rule")
def template_label_promql(d: Json) -> Iterator[Finding]:
    if not prometheus_dashboard(d):
        return
    for t in templating(d):
        if t.get("type") != "query":
            continue
        query = variable_query(t)
        problem = label_query_problem(query)
        if problem:
            yield Finding("template-label-promql-rule", d.get("title", ""),
                          f"template {t.get('name')!r} has invalid query {query!r}: {problem}")


def label_query_problem(query: str) -> str:
    """Why a Prometheus variable query is invalid, or '' when it is valid."""
    m = LABEL_QUERY_RE.match(query)
    if not m:
        return "not one of label_names(), label_values(), metrics(), query_result()"
    func, arg = m.group(1), m.group(2).strip()
    try:
        if func == "label_values":
            selector, _, label = arg.rpartition(",")
            label = label.strip() if selector else arg
            if not re.fullmatch(r"[a-zA-Z_]\w*", label):
                return f"{label!r} is not a label name"
            if selector.strip() and not isinstance(parse_target(selector.strip()), pq.VectorSelector):
                return f"{selector.strip()!r} is not a series selector"
        elif func == "query_result" or (func == "label_names" and arg):
            parse_target(arg)
    except pq.PromQLError as exc:
        return str(exc)
    return ""


@rule("template-on-time-change-reload-rule")
def template_on_time_change_reload(d: Json) -> Iterator[Finding]:
    for t in templating(d):
        if t.get("type") == "query" and t.get("refresh") != 2:
            yield Finding("template-on-time-change-reload-rule", d.get("title", ""),
                          f"template {t.get('name')!r} should refresh on time range change (2), "
                          f"is {t.get('refresh')!r}")


@rule("uneditable-dashboard-rule")
def uneditable(d: Json) -> Iterator[Finding]:
    if d.get("editable", True):
        yield Finding("uneditable-dashboard-rule", d.get("title", ""), "is editable; set 'editable: false'")


# --- panel rules ------------------------------------------------------------------------------


@rule("panel-datasource-rule")
def panel_datasource(d: Json) -> Iterator[Finding]:
    allowed = {f"${t['name']}" for t in templating(d) if t.get("type") == "datasource"}
    allowed |= {f"${{{name[1:]}}}" for name in allowed}
    for p in panels(d):
        if p.get("type") not in DATASOURCE_PANELS:
            continue
        uids = [("panel", datasource_uid(p.get("datasource")))]
        uids += [(f"target {i}", datasource_uid(t.get("datasource")))
                 for i, t in enumerate(p.get("targets") or []) if t.get("datasource") is not None]
        for where, uid in uids:
            if uid not in allowed:
                yield Finding("panel-datasource-rule", d.get("title", ""),
                              f"{where} does not use a templated data source, uses {uid!r}", p.get("title", ""))


@rule("panel-title-description-rule")
def panel_title_description(d: Json) -> Iterator[Finding]:
    for p in panels(d):
        if p.get("type") in DESCRIBED_PANELS and not (p.get("title") and p.get("description")):
            yield Finding("panel-title-description-rule", d.get("title", ""),
                          f"panel id {p.get('id')} has a missing title or description", p.get("title", ""))


@rule("panel-units-rule")
def panel_units(d: Json) -> Iterator[Finding]:
    for p in panels(d):
        if p.get("type") not in UNIT_PANELS:
            continue
        config = p.get("fieldConfig", {})
        defaults = config.get("defaults", {})
        if defaults.get("mappings"):
            continue  # value mappings replace units
        if p.get("type") == "stat" and p.get("options", {}).get("reduceOptions", {}).get("fields", ""):
            continue  # a stat showing non-numeric fields (a label's value)
        units = [defaults.get("unit", "")]
        units += [prop.get("value", "") for o in config.get("overrides", [])
                  for prop in o.get("properties", []) if prop.get("id") == "unit"]
        for unit in units:
            if unit not in VALID_UNITS:
                yield Finding("panel-units-rule", d.get("title", ""), f"has no or an invalid unit: {unit!r}",
                              p.get("title", ""))


@rule("panel-no-targets-rule")
def panel_no_targets(d: Json) -> Iterator[Finding]:
    for p in panels(d):
        if p.get("type") in UNIT_PANELS and not p.get("targets"):
            yield Finding("panel-no-targets-rule", d.get("title", ""), "has no targets", p.get("title", ""))


# --- target rules -----------------------------------------------------------------------------


def parsed_targets(d: Json) -> Iterator[tuple[Json, int, Json, pq.Node]]:
    """Targets of a Prometheus dashboard that parse (the promql rule reports those that do not)."""
    if not prometheus_dashboard(d):
        return
    for p, i, t in targets(d):
        try:
            yield p, i, t, parse_target(t.get("expr", ""))
        except pq.PromQLError:
            continue


@rule("target-promql-rule")
def target_promql(d: Json) -> Iterator[Finding]:
    if not prometheus_dashboard(d):
        return
    for p, i, t in targets(d):
        expr = t.get("expr", "")
        if not expr.strip():
            yield target_finding("target-promql-rule", d, p, i, "has an empty query")
            continue
        try:
            parse_target(expr)
        except pq.PromQLError as exc:
            yield target_finding("target-promql-rule", d, p, i, f"invalid PromQL {expr!r}: {exc}")


RATE_INTERVAL = f"{MAGIC_SECONDS['__rate_interval']}s"


@rule("target-rate-interval-rule")
def target_rate_interval(d: Json) -> Iterator[Finding]:
    for p, i, t, node in parsed_targets(d):
        for n, parents in pq.walk(node):
            if not isinstance(n, pq.MatrixSelector) or not parents:
                continue
            call = parents[-1]
            if n.range == RATE_INTERVAL and not (isinstance(call, pq.Call) and call.func in ("rate", "irate")):
                what = call.func if isinstance(call, pq.Call) else type(call).__name__
                yield target_finding("target-rate-interval-rule", d, p, i,
                                     f"$__rate_interval used outside rate/irate (in {what})")
            elif isinstance(call, pq.Call) and call.func in ("rate", "irate") and n.range != RATE_INTERVAL:
                yield target_finding("target-rate-interval-rule", d, p, i,
                                     f"{call.func}() should use [$__rate_interval]: {t.get('expr')!r}")


def matcher_rule(label: str) -> DashboardRule:
    name = f"target-{label}-rule"

    def check(d: Json) -> Iterator[Finding]:
        for p, i, _t, node in parsed_targets(d):
            for sel in pq.selectors(node):
                found = [m for m in sel.matchers if m.name == label]
                if not any(m.op == "=~" and m.value in (f"${label}", f"${{{label}}}") for m in found):
                    got = ", ".join(f"{m.name}{m.op}{m.value!r}" for m in found) or "none"
                    yield target_finding(name, d, p, i, f"selector {sel.name or '{...}'} needs "
                                         f'{label}=~"${label}" (has {got})')
    RULES[name] = check
    return check


matcher_rule("job")
matcher_rule("instance")


@rule("target-counter-agg-rule")
def target_counter_agg(d: Json) -> Iterator[Finding]:
    for p, i, _t, node in parsed_targets(d):
        for n, parents in pq.walk(node):
            if not (isinstance(n, pq.VectorSelector) and n.name.endswith("_total")):
                continue
            ok = (len(parents) >= 2 and isinstance(parents[-1], pq.MatrixSelector)
                  and isinstance(parents[-2], pq.Call) and parents[-2].func in ("rate", "irate", "increase"))
            if not ok:
                yield target_finding("target-counter-agg-rule", d, p, i,
                                     f"counter {n.name} is not wrapped in rate, irate or increase")


# --- the project's own rules ------------------------------------------------------------------


@rule("netpol-model-rule")
def model(d: Json) -> Iterator[Finding]:
    """What file provisioning, the sidecar and import need of a classic dashboard model."""
    title = d.get("title", "")
    problems = []
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < MIN_SCHEMA_VERSION:
        problems.append(f"schemaVersion {d.get('schemaVersion')!r} < {MIN_SCHEMA_VERSION}")
    if "__inputs" in d or "__requires" in d:
        problems.append("has __inputs/__requires (an export for sharing), which provisioning does not resolve")
    if d.get("id") is not None:
        problems.append("id must be null: Grafana assigns it")
    uid = d.get("uid")
    if not isinstance(uid, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", uid):
        problems.append(f"uid {uid!r} must be a stable string of at most 40 [a-zA-Z0-9_-]")
    if not title:
        problems.append("has no title")
    ids = [p.get("id") for p in panels(d)]
    if len(ids) != len(set(ids)) or not all(isinstance(i, int) for i in ids):
        problems.append(f"panel ids must be unique integers, are {ids}")
    titles = [str(p.get("title", "")) for p in panels(d) if p.get("type") != "row"]
    for dup in sorted({t for t in titles if titles.count(t) > 1}):
        problems.append(f"panel title {dup!r} is used twice (exclusions and links address panels by title)")
    occupied: dict[tuple[int, int], str] = {}
    for p in panels(d):
        g = p.get("gridPos", {})
        x, y, w, h = (g.get(k) for k in ("x", "y", "w", "h"))
        if not all(isinstance(v, int) for v in (x, y, w, h)) or x < 0 or w < 1 or h < 1 or x + w > 24:
            problems.append(f"panel {p.get('title')!r} has an invalid gridPos {g}")
            continue
        for cell in ((cx, cy) for cx in range(x, x + w) for cy in range(y, y + h)):
            if cell in occupied:
                problems.append(f"panel {p.get('title')!r} overlaps {occupied[cell]!r}")
                break
            occupied[cell] = p.get("title", "")
    for problem in problems:
        yield Finding("netpol-model-rule", title, problem)


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


@rule("netpol-variable-reference-rule")
def variable_references(d: Json) -> Iterator[Finding]:
    """Every $variable a query, title, description or link uses is defined (or a Grafana global)."""
    defined = {str(t.get("name")) for t in templating(d)} | GLOBAL_VARIABLES
    for p in panels(d):
        link_texts = [s for key in ("links",) for s in strings_in(p.get("fieldConfig", {}).get("defaults", {})
                                                                  .get(key, []))]
        link_texts += [s for o in p.get("fieldConfig", {}).get("overrides", []) for prop in o.get("properties", [])
                       if prop.get("id") == "links" for s in strings_in(prop.get("value"))]
        texts = [p.get("title", ""), *(t.get("expr", "") for t in p.get("targets") or [])]
        for text, allowed in [(t, defined) for t in texts] + [(t, defined | DATA_LINK_VARIABLES) for t in link_texts]:
            for name in sorted(referenced_variables(text) - allowed):
                yield Finding("netpol-variable-reference-rule", d.get("title", ""),
                              f"uses undefined variable ${name} in {text!r}", p.get("title", ""))
    for t in templating(d):
        for name in sorted(referenced_variables(variable_query(t)) - defined):
            yield Finding("netpol-variable-reference-rule", d.get("title", ""),
                          f"template {t.get('name')!r} uses undefined variable ${name}")


# --- running ----------------------------------------------------------------------------------


@dataclass
class Exclusion:
    rule: str
    reason: str
    entries: list[Json]

    def covers(self, f: Finding) -> bool:
        if f.rule != self.rule:
            return False
        if not self.entries:
            return True
        return any(
            e.get("dashboard", f.dashboard) == f.dashboard
            and e.get("panel", f.panel) == f.panel
            and e.get("targetIdx", f.target_idx) == f.target_idx
            for e in self.entries
        )


def load_exclusions(path: Path) -> list[Exclusion]:
    """Read a dashboard-linter `.lint` file; every exclusion must give a reason."""
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = []
    for name, spec in (data.get("exclusions") or {}).items():
        spec = spec or {}
        if name not in RULES:
            raise ValueError(f"{path}: exclusion for unknown rule {name!r}")
        if not str(spec.get("reason", "")).strip():
            raise ValueError(f"{path}: exclusion of {name!r} has no reason")
        out.append(Exclusion(name, spec["reason"], list(spec.get("entries") or [])))
    return out


def lint(dashboard: Json, exclusions: Sequence[Exclusion] = ()) -> tuple[list[Finding], list[Finding]]:
    """(findings, excluded findings) of every rule on one dashboard."""
    findings: list[Finding] = []
    excluded: list[Finding] = []
    for fn in RULES.values():
        for f in fn(dashboard):
            (excluded if any(e.covers(f) for e in exclusions) else findings).append(f)
    return findings, excluded
