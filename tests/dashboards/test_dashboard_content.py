"""What the dashboards issue asks of the dashboards beyond the generic lint rules."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from tests.dashboards import dashlint
from tests.dashboards import promql_ast as pq
from tests.dashboards.common import DASHBOARDS, alert_names, committed, recording_rules

OVERVIEW, REVIEW = "netpol-overview", "netpol-denied-flows"
REQUIRED_VARIABLES = {"datasource": "datasource", "job": "query", "source_namespace": "query",
                      "destination_namespace": "query", "policy": "query"}


def by_uid() -> dict[str, dict[str, Any]]:
    return {d["uid"]: d for d in committed().values()}


def panel(d: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in dashlint.panels(d) if p.get("title") == title)


def query_panels() -> list[tuple[str, dict[str, Any]]]:
    return [(d["title"], p) for d in committed().values() for p in dashlint.panels(d) if p["type"] != "row"]


def test_two_dashboards_with_stable_uids_and_titles() -> None:
    dashboards = by_uid()
    assert set(dashboards) == {OVERVIEW, REVIEW}
    assert dashboards[OVERVIEW]["title"] == "Network policy overview"
    assert dashboards[REVIEW]["title"] == "Denied flows review"
    for d in dashboards.values():
        assert d["schemaVersion"] >= 36 and d["id"] is None and "__inputs" not in d


@pytest.mark.parametrize("uid", [OVERVIEW, REVIEW])
def test_variables(uid: str) -> None:
    d = by_uid()[uid]
    variables = {v["name"]: v for v in dashlint.templating(d)}
    for name, kind in REQUIRED_VARIABLES.items():
        assert variables[name]["type"] == kind, name
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("source_namespace", "destination_namespace", "policy"):
        v = variables[name]
        assert v["multi"] and v["includeAll"], name
        # Non-pod peers (world, host ...) have an empty namespace: All must match the empty string.
        assert re.fullmatch(v["allValue"], ""), f"{name}: All must include empty values"
        assert v["datasource"]["uid"] == "${datasource}"


def test_every_panel_and_target_on_the_datasource_variable() -> None:
    for dashboard, p in query_panels():
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (dashboard, p["title"])
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"], (dashboard, p["title"])


def test_units_and_descriptions() -> None:
    for dashboard, p in query_panels():
        assert p["fieldConfig"]["defaults"].get("unit") in dashlint.VALID_UNITS, (dashboard, p["title"])
        assert len(p["description"]) > 40, (dashboard, p["title"])


def families_read(p: dict[str, Any]) -> set[str]:
    names = {sel.name for t in p["targets"] for sel in pq.selectors(dashlint.parse_target(t["expr"]))}
    return {family for family in ("dropped", "allowed", "audit")
            if any(f"networkpolicy_{family}" in name for name in names)}


def test_descriptions_say_what_is_counted() -> None:
    """The contract: Hubble counts one per new connection for allowed traffic; Calico counts packets;
    allowed pod-to-pod Calico traffic is reported by both ends."""
    for dashboard, p in query_panels():
        families = families_read(p)
        text = p["description"]
        where = f"{dashboard} / {p['title']}"
        if "allowed" in families:
            assert "one per new connection" in text.lower(), where
            assert "Calico counts packets" in text, where
            assert "both ends" in text, where
        if "dropped" in families:
            assert "packet" in text and "Calico" in text, where
        if "audit" in families:
            assert "audit" in text and "staged" in text, where


def test_recording_rules_used_exist_and_panels_name_them() -> None:
    rules = recording_rules()
    used = set()
    for dashboard, p in query_panels():
        for t in p["targets"]:
            for sel in pq.selectors(dashlint.parse_target(t["expr"])):
                if ":" in sel.name:
                    assert sel.name in rules, f"{dashboard} / {p['title']} reads missing rule {sel.name}"
                    used.add(sel.name)
                    # a panel reading a fixed-window rule says so
                    assert sel.name.split(":")[1] in p["description"] or sel.name in p["description"] or \
                        sel.name.startswith("instance_"), (p["title"], sel.name)
    assert "policy_direction_namespaces:networkpolicy_dropped_packets:rate5m" in used
    assert "policy_direction_namespaces:networkpolicy_allowed_packets:rate5m" in used
    assert "flow:networkpolicy_allowed_packets_unexpected_port:increase5m" in used
    assert "flow:networkpolicy_dropped_packets:increase5m" in used


FLOW_VARIABLES = ("job", "source_namespace", "destination_namespace", "policy")
# The panels that read recording rules over the flow families (once limited to some variables).
RULE_PANELS = {"Denied by policy and direction", "Allowed by policy and direction",
               "Allowed traffic to unexpected ports", "Denied by namespace pair"}


def reads_flows(name: str) -> bool:
    """A raw flow family (networkpolicy_*_total) or a recording rule over them (level:networkpolicy_*:op)."""
    return name.startswith("networkpolicy_") or ":networkpolicy_" in name


def test_every_variable_applies_to_every_flow_panel() -> None:
    """Raw families and recording rules alike: each selector of flow data filters on the job, both
    namespaces and the policy, so no panel silently ignores a variable."""
    checked = set()
    for dashboard, p in query_panels():
        for t in p["targets"]:
            for sel in pq.selectors(dashlint.parse_target(t["expr"])):
                if not reads_flows(sel.name):
                    continue
                checked.add(p["title"])
                matchers = {(m.name, m.op, m.value) for m in sel.matchers}
                for var in FLOW_VARIABLES:
                    assert (var, "=~", f"${var}") in matchers, (
                        f"{dashboard} / {p['title']}: {sel.name} ignores the {var} variable")
    assert checked >= RULE_PANELS



def test_descriptions_claim_no_ignored_variable() -> None:
    """Every variable applies to the flow panels now: no description may say otherwise."""
    for dashboard, p in query_panels():
        text = p["description"]
        assert not re.search(r"does not apply|only the \w+ variable|cannot apply", text, re.I), (
            dashboard, p["title"])


def test_rates_use_rate_interval_and_totals_the_range() -> None:
    for dashboard, p in query_panels():
        for t in p["targets"]:
            node = dashlint.parse_target(t["expr"])
            for n, parents in pq.walk(node):
                if isinstance(n, pq.MatrixSelector):
                    func = parents[-1].func if isinstance(parents[-1], pq.Call) else ""
                    expected = {"rate": "__rate_interval", "increase": "__range"}.get(func)
                    assert expected, f"{dashboard} / {p['title']}: range vector in {func!r}"
                    assert n.range == f"{dashlint.MAGIC_SECONDS[expected]}s", (dashboard, p["title"])


def test_alert_panel_covers_every_alert_of_the_pack() -> None:
    pattern = dashlint.template(by_uid()[OVERVIEW], "alerts")
    assert pattern is not None
    names = alert_names()
    assert names, "no alerts in rules/*.yml"
    for name in names:
        assert re.fullmatch(pattern["query"], name), f"Alerts firing panel misses {name}"


def test_dashboards_link_to_each_other() -> None:
    dashboards = by_uid()
    for uid, d in dashboards.items():
        (link,) = d["links"]
        assert link["type"] == "dashboards" and link["includeVars"] and link["keepTime"]
        others = [o for o in dashboards.values() if o["uid"] != uid]
        assert all(set(link["tags"]) <= set(o["tags"]) for o in others), "the tag link must reach the other"


def data_links(d: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out = [(p["title"], link) for p in dashlint.panels(d)
           for link in p.get("fieldConfig", {}).get("defaults", {}).get("links", [])]
    out += [(p["title"], link) for p in dashlint.panels(d) for o in p.get("fieldConfig", {}).get("overrides", [])
            for prop in o["properties"] if prop["id"] == "links" for link in prop["value"]]
    return out


def test_data_links_point_at_real_dashboards_and_variables() -> None:
    dashboards = by_uid()
    seen = 0
    for d in dashboards.values():
        for title, link in data_links(d):
            url = urlsplit(link["url"])
            m = re.fullmatch(r"/d/([\w-]+)/[\w-]+", url.path)
            assert m and m.group(1) in dashboards, f"{title}: {link['url']}"
            target_vars = {v["name"] for v in dashlint.templating(dashboards[m.group(1)])}
            for key, _ in parse_qsl(url.query.replace("${", "%24%7B")):
                if key.startswith("var-"):
                    assert key[4:] in target_vars, f"{title}: {key} is not a variable of {m.group(1)}"
            carried = re.findall(r"\$\{(\w+):queryparam\}", link["url"])
            assert {"datasource", "job"} <= set(carried) <= target_vars, (title, carried)
            assert "${__url_time_range}" in link["url"], f"{title}: the link must keep the time range"
            seen += 1
    assert seen >= 3


def test_policy_drill_down() -> None:
    """Overview: a policy's series → its denied flows; review: a Policy cell → only that policy."""
    overview, review = by_uid()[OVERVIEW], by_uid()[REVIEW]
    (series_link,) = panel(overview, "Denied by policy and direction")["fieldConfig"]["defaults"]["links"]
    assert f"/d/{REVIEW}/" in series_link["url"] and "var-policy=${__field.labels.policy}" in series_link["url"]
    for d, title in ((overview, "Top denied source → destination:port"), (review, "Denied flows")):
        links = [link for t, link in data_links(d) if t == title]
        assert links and all("var-policy=${__value.raw}" in link["url"] for link in links), title


def test_review_table_columns() -> None:
    table = panel(by_uid()[REVIEW], "Denied flows")
    node = dashlint.parse_target(table["targets"][0]["expr"])
    aggregations = [n for n, _ in pq.walk(node) if isinstance(n, pq.Aggregate)]
    assert set(aggregations[0].grouping) == {"source", "destination", "destination_port", "protocol", "policy",
                                             "reason", "direction"}
    titles = {o["matcher"]["options"]: o["properties"][0]["value"] for o in table["fieldConfig"]["overrides"]}
    assert titles["Value"] == "Packets" and titles["destination_port"] == "Port"
    assert table["targets"][0]["instant"] and table["targets"][0]["format"] == "table"


def test_file_provisioning_example() -> None:
    config = yaml.safe_load((DASHBOARDS / "provisioning" / "netpol-exporter.yaml").read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
    assert provider["allowUiUpdates"] is False  # the JSON in git is the source of truth


def test_descriptions_render_as_markdown_unchanged() -> None:
    """Grafana renders panel descriptions as sanitized Markdown: no HTML-like <words>, and no bare
    __names__, which would turn bold."""
    for dashboard, p in query_panels():
        outside_code = re.sub(r"`[^`]*`", "", p["description"])
        assert not re.search(r"<\w", outside_code), (dashboard, p["title"])
        assert not re.search(r"(?<!\w)__\w+__(?!\w)", outside_code), (dashboard, p["title"])
