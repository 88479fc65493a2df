"""Lint the dashboards with the dashboard-linter rules (tests/dashboards/dashlint.py), check every query
with Prometheus' own parser (promtool), and prove each lint rule catches what it is for."""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboards import dashlint
from tests.dashboards import promql_ast as pq
from tests.dashboards.common import DASHBOARDS, committed, recording_rules

EXCLUSIONS = dashlint.load_exclusions(DASHBOARDS / ".lint")
DASHBOARD_FILES = sorted(committed())


@pytest.mark.parametrize("name", DASHBOARD_FILES)
def test_dashboard_passes_the_linter(name: str) -> None:
    findings, _ = dashlint.lint(committed()[name], EXCLUSIONS)
    assert not findings, "\n".join(map(str, findings))


def test_every_exclusion_still_matches_something() -> None:
    excluded = [f for d in committed().values() for f in dashlint.lint(d, EXCLUSIONS)[1]]
    for exclusion in EXCLUSIONS:
        assert any(exclusion.covers(f) for f in excluded), f"stale exclusion of {exclusion.rule}"
        for entry in exclusion.entries:
            assert any(dashlint.Exclusion(exclusion.rule, "", [entry]).covers(f) for f in excluded), (
                f"stale {exclusion.rule} entry {entry}")


def test_exclusions_need_a_reason(tmp_path: Path) -> None:
    lint_file = tmp_path / ".lint"
    lint_file.write_text("exclusions:\n  target-job-rule:\n    entries: [{panel: x}]\n")
    with pytest.raises(ValueError, match="no reason"):
        dashlint.load_exclusions(lint_file)
    lint_file.write_text("exclusions:\n  no-such-rule:\n    reason: because\n")
    with pytest.raises(ValueError, match="unknown rule"):
        dashlint.load_exclusions(lint_file)


# --- Prometheus' parser is the authority on syntax ------------------------------------------------

# What Grafana substitutes, as Prometheus-valid values (multi-value variables as their All regex).
GRAFANA_VALUES = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__range_s": "3600",
                  "__range_ms": "3600000", "__interval_ms": "15000"}


def all_queries() -> list[tuple[str, str, str]]:
    """(dashboard, where, PromQL) for every panel target and every variable's series selector."""
    out = []
    for d in committed().values():
        for p in dashlint.panels(d):
            for i, t in enumerate(p.get("targets") or []):
                out.append((d["title"], f"{p['title']} target {i}", t["expr"]))
        for v in dashlint.templating(d):
            if v.get("type") == "query":
                query = dashlint.variable_query(v)
                selector = query[query.index("(") + 1:query.rindex(",")]
                out.append((d["title"], f"variable {v['name']}", selector))
    return out


def substitute(expr: str, values: dict[str, str]) -> str:
    return dashlint.VARIABLE_RE.sub(
        lambda m: values.get(next(g for g in m.groups() if g), m.group()), expr)


def test_promtool_accepts_every_query(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (bash scripts/install-test-deps.sh installs it)")
    queries = all_queries()
    rules = [{"record": f"dashboard:query_{i}:check", "expr": substitute(q, GRAFANA_VALUES)}
             for i, (_, _, q) in enumerate(queries)]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, sort_keys=False))
    result = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_own_parser_accepts_what_prometheus_accepts() -> None:
    """The lint rules walk promql_ast's trees: it must read the real queries it is given."""
    for _, _where, query in all_queries():
        pq.parse(dashlint.expand(query))
    rules = recording_rules()
    assert rules, "no recording rules found in rules/*.yml"
    for name, expr in rules.items():
        assert pq.parse(expr), name


@pytest.mark.parametrize("query", [
    "sum(rate(x[5m])",  # unbalanced
    "rate(x)",  # instant vector where a range vector belongs
    "sum(x[5m])",  # range vector into an aggregation
    "nosuchfunction(x)",
    'x{job=~"("}',  # bad regular expression
    '{job=~".*"}',  # no matcher that excludes the empty string
    "x + ",
    "topk(x, y)",  # parameter must be a scalar
    'x{a="b"}[5m] + 1',
    "1 > 2",  # scalar comparison without bool
    "rate(x[5m]) by (a)",
])
def test_own_parser_rejects(query: str) -> None:
    with pytest.raises(pq.PromQLError):
        pq.parse(query)


def test_own_parser_structure() -> None:
    node = pq.parse('sum by (policy) (rate(m_total{job=~"$job"}[5m] offset 1m)) / on(policy) group_left x')
    assert isinstance(node, pq.Binary) and node.op == "/" and node.matching == ["policy"]
    agg = node.lhs
    assert isinstance(agg, pq.Aggregate) and agg.grouping == ["policy"]
    (sel,) = pq.selectors(node.lhs)
    assert sel.name == "m_total" and sel.matchers == [pq.Matcher("job", "=~", "$job")]
    assert pq.parse("2 ^ 3 ^ 2").rhs.op == "^"  # type: ignore[attr-defined]  # right-associative
    assert isinstance(pq.parse("a or b and c"), pq.Binary) and pq.parse("a or b and c").op == "or"  # type: ignore[attr-defined]


# --- each rule catches its mistake ---------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def first_panel(d: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(p for p in dashlint.panels(d) if p["type"] == kind)


EXCLUDED_PANELS = {e.get("panel") for x in EXCLUSIONS for e in x.entries}


def set_expr(expr: str) -> Mutation:
    """Replace the query of the first time series panel that no exclusion names."""
    def mutate(d: dict[str, Any]) -> None:
        panel = next(p for p in dashlint.panels(d) if p["type"] == "timeseries" and p["title"] not in EXCLUDED_PANELS)
        panel["targets"][0]["expr"] = expr
    return mutate


def var(d: dict[str, Any], name: str) -> dict[str, Any]:
    tmpl = dashlint.template(d, name)
    assert tmpl is not None
    return tmpl


MUTATIONS: dict[str, tuple[str, Mutation]] = {
    "no datasource variable": ("template-datasource-rule", lambda d: d["templating"]["list"].pop(0)),
    "datasource variable renamed": ("template-datasource-rule", lambda d: var(d, "datasource").update(name="ds")),
    "job allValue .*": ("template-job-rule", lambda d: var(d, "job").update(allValue=".*")),
    "job single select": ("template-job-rule", lambda d: var(d, "job").update(multi=False)),
    "job on a fixed datasource": ("template-job-rule",
                                  lambda d: var(d, "job").update(datasource={"type": "prometheus", "uid": "prom1"})),
    "variable query not a label function": ("template-label-promql-rule",
                                            lambda d: var(d, "policy").update(query="up{")),
    "variable selector broken": ("template-label-promql-rule",
                                 lambda d: var(d, "policy").update(query="label_values(up{job=, policy)")),
    "variable refreshed on load only": ("template-on-time-change-reload-rule",
                                        lambda d: var(d, "policy").update(refresh=1)),
    "editable": ("uneditable-dashboard-rule", lambda d: d.update(editable=True)),
    "panel on a fixed datasource": ("panel-datasource-rule",
                                    lambda d: first_panel(d, "stat").update(datasource={"uid": "prom1"})),
    "target on a fixed datasource": ("panel-datasource-rule",
                                     lambda d: first_panel(d, "table")["targets"][0].update(datasource={"uid": "x"})),
    "no description": ("panel-title-description-rule", lambda d: first_panel(d, "timeseries").update(description="")),
    "no unit": ("panel-units-rule", lambda d: first_panel(d, "stat")["fieldConfig"]["defaults"].pop("unit")),
    "invalid unit": ("panel-units-rule",
                     lambda d: first_panel(d, "table")["fieldConfig"]["defaults"].update(unit="furlongs")),
    "no targets": ("panel-no-targets-rule", lambda d: first_panel(d, "stat").update(targets=[])),
    "query does not parse": ("target-promql-rule",
                             set_expr('sum(rate(networkpolicy_dropped_packets_total{job=~"$job"}')),
    "empty query": ("target-promql-rule", set_expr("")),
    "fixed rate window": ("target-rate-interval-rule",
                          set_expr('sum(rate(networkpolicy_dropped_packets_total{job=~"$job"}[5m]))')),
    "rate interval in a non-rate function": (
        "target-rate-interval-rule",
        set_expr('max_over_time(netpol_exporter_series{job=~"$job"}[$__rate_interval])')),
    "no job matcher": ("target-job-rule", set_expr("sum(rate(networkpolicy_dropped_packets_total[$__rate_interval]))")),
    "job matcher not the variable": (
        "target-job-rule", set_expr('sum(rate(networkpolicy_dropped_packets_total{job="x"}[$__rate_interval]))')),
    "raw counter": ("target-counter-agg-rule", set_expr('sum(networkpolicy_dropped_packets_total{job=~"$job"})')),
    "counter in the wrong function": (
        "target-counter-agg-rule",
        set_expr('sum(max_over_time(networkpolicy_dropped_packets_total{job=~"$job"}[$__rate_interval]))')),
    "old schema": ("netpol-model-rule", lambda d: d.update(schemaVersion=27)),
    "export with inputs": ("netpol-model-rule", lambda d: d.update(__inputs=[{"name": "DS_PROMETHEUS"}])),
    "no uid": ("netpol-model-rule", lambda d: d.pop("uid")),
    "duplicate panel id": ("netpol-model-rule",
                           lambda d: first_panel(d, "stat").update(id=first_panel(d, "table")["id"])),
    "overlapping panels": ("netpol-model-rule",
                           lambda d: first_panel(d, "table").update(gridPos=dict(first_panel(d, "stat")["gridPos"]))),
    "duplicate panel title": ("netpol-model-rule",
                              lambda d: first_panel(d, "stat").update(title=first_panel(d, "table")["title"])),
    "panel wider than the grid": ("netpol-model-rule", lambda d: first_panel(d, "stat")["gridPos"].update(x=20, w=6)),
    "undefined variable in a query": (
        "netpol-variable-reference-rule",
        set_expr('sum(rate(networkpolicy_dropped_packets_total{job=~"$job", pod=~"$pod"}[$__rate_interval]))')),
    "undefined variable in a link": (
        "netpol-variable-reference-rule",
        lambda d: first_panel(d, "timeseries")["fieldConfig"]["defaults"].update(
            links=[{"title": "x", "url": "/d/x?var-ns=${namespace}"}])),
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_rule_catches(case: str) -> None:
    rule_name, mutate = MUTATIONS[case]
    for d in committed().values():
        broken = copy.deepcopy(d)
        mutate(broken)
        findings, _ = dashlint.lint(broken, EXCLUSIONS)
        assert any(f.rule == rule_name for f in findings), f"{rule_name} missed {case!r} in {d['title']}"


def test_every_rule_has_a_mutation_or_an_exclusion() -> None:
    covered = {rule for rule, _ in MUTATIONS.values()} | {e.rule for e in EXCLUSIONS if not e.entries}
    assert set(dashlint.RULES) <= covered, set(dashlint.RULES) - covered


AGREEMENT_CASES = [
    'sum without (instance) (rate(a_total{job=~"$job"}[5m]))',
    "topk(5, sum by (a) (b)) > 0",
    "count_values(\"v\", a)",
    "a / on(x) group_left(y) b",
    "a unless on(x) b offset 5m",
    "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))",
    "max_over_time(rate(a[1m])[10m:1m])",
    "label_replace(vector(1), \"p\", \"53\", \"\", \"\")",
    "-a ^ 2",
    "a @ 1700000000",
    "time() - b",
    "1 > bool 2",
    "sum(a) by (x) * on() group_left scalar(b)",
    "rate(a[5m] offset -1m)",
    # invalid
    "sum(rate(a[5m])",
    "rate(a)",
    "a[5m] + 1",
    "topk(a, b)",
    "nosuch(a)",
    "a{b~\"c\"}",
    "1 and 2",
    "sum by (a) (b) by (c)",
    "a offset",
    "count_values(1, a)",
    "abs(a, b)",
    "{__name__=~\".*\"}",
]


def test_own_parser_agrees_with_promtool(tmp_path: Path) -> None:
    """Accept exactly what Prometheus' parser accepts, on constructs the dashboards may use."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (bash scripts/install-test-deps.sh installs it)")
    for i, query in enumerate(AGREEMENT_CASES):
        rule_file = tmp_path / f"q{i}.yml"
        rule_file.write_text(yaml.safe_dump({"groups": [{"name": "q", "rules": [{"record": "q:q:q", "expr": query}]}]}))
        prometheus_ok = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True,
                                       timeout=30, check=False).returncode == 0
        try:
            pq.parse(query)
            ours = True
        except pq.PromQLError:
            ours = False
        assert ours == prometheus_ok, f"{query!r}: promtool {'accepts' if prometheus_ok else 'rejects'} it"
