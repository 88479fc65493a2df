"""Every panel query against a real Prometheus that scraped `netpol-exporter demo` with the project's
recording rules and alerts loaded: each query parses and runs, the main panels return data, the
variables list values and apply to every flow panel (recording rules included), and the policy
drill-down narrows the review table to that policy. The stack comes from tests/e2e/promstack.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboards import dashlint
from tests.dashboards import promql_ast as pq
from tests.dashboards.common import RULES, committed, load_module, recording_rules
from tests.e2e.promstack import Launcher, Prometheus, require_module, require_tool, scrape_every_second

pytestmark = pytest.mark.e2e

SCRAPE_JOB = "netpol-exporter"  # the job the recording rules select
# Grafana's values for the global variables in this setting (1 s scrapes; $__rate_interval is
# max(4 x scrape interval, $__interval + scrape interval) = 4 s, rounded up for slack).
RATE_INTERVAL = "5s"
INTERVAL = "2s"
RANGE = "2m"
RANGE_QUERY_SPAN = 20.0
DEMO_SECONDS = 600  # bounds the demo's run should the test leak it

# Panels allowed to come back empty on the demo's traffic, and why; every other panel must have data.
MAY_BE_EMPTY = {
    "Would be denied (audit) in range": "the demo replays no audit-mode or staged policy",
    "Would-be-denied flows (audit / staged)": "the demo replays no audit-mode or staged policy",
    "Allowed traffic to unexpected ports": "the demo's allowed traffic stays on the expected ports",
    "Alerts firing": "alerts need `for:` minutes of data; the test runs for seconds",
}
READY_QUERIES = [
    # raw families scraped twice, and the recording rules the main panels read evaluated
    f'rate(networkpolicy_dropped_packets_total[{RATE_INTERVAL}])',
    f'rate(networkpolicy_allowed_packets_total[{RATE_INTERVAL}])',
    "policy_direction_namespaces:networkpolicy_dropped_packets:rate5m",
    "policy_direction_namespaces:networkpolicy_allowed_packets:rate5m",
    "flow:networkpolicy_dropped_packets:increase5m",
    "instance_source:netpol_exporter_events_read:rate5m",
    "instance_family:netpol_exporter_series_per_limit:ratio",
]
FLOW_VARIABLES = ("job", "source_namespace", "destination_namespace", "policy")
CORPUS = Path(__file__).parents[1] / "fidelity" / "corpus"


def feed_shapes(directory: Path, stop: threading.Event) -> tuple[Path, Path]:
    """Files that grow every half second with shapes the demo has no traffic for: a request an L7 policy
    denied (Hubble) and forwarded traffic a host-endpoint policy denied and allowed (Calico `fwd`)."""
    hubble, calico = directory / "l7.jsonl", directory / "forward.jsonl"
    l7_request = json.loads((CORPUS / "hubble-l7-denied.jsonl").read_text().splitlines()[0])
    forward = [line for line in (CORPUS / "calico-forward.jsonl").read_text().splitlines()
               if json.loads(line)["reporter"] == "fwd"]
    hubble.touch()
    calico.touch()

    def append() -> None:
        while not stop.wait(0.5):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000000Z"
            l7_request["flow"]["time"] = l7_request["time"] = stamp
            with hubble.open("a") as out:
                out.write(json.dumps(l7_request) + "\n")
            with calico.open("a") as out:
                out.write("\n".join(forward) + "\n")
    threading.Thread(target=append, daemon=True).start()
    return hubble, calico


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    require_tool("prometheus")
    rule_files = sorted(RULES.glob("*.yml"))
    assert rule_files, "no rule files in rules/"
    workdir = tmp_path_factory.mktemp("promstack")
    stop = threading.Event()
    with Launcher(workdir) as launch:
        # 4x speed: the minute-long loop of the demo every 15 s.
        exporter = launch.exporter("demo", "--speed", "4", "--duration", str(DEMO_SECONDS))
        hubble, calico = feed_shapes(workdir, stop)
        shapes = launch.exporter("run", "--no-kubernetes", "--source", f"hubble-file:{hubble}",
                                 "--source", f"calico-file:{calico}")
        prom = launch.prometheus(scrape_every_second(SCRAPE_JOB, exporter, shapes), rule_files)
        deadline = time.monotonic() + 60
        pending = list(READY_QUERIES)
        while pending and time.monotonic() < deadline:
            pending = [q for q in pending if not prom.query(q)]
            time.sleep(0.5)
        assert not pending, f"no data after 60 s for {pending}; logs in {workdir}"
        time.sleep(3)  # a few more scrapes and rule evaluations
        yield prom
        stop.set()


def substitutions(dashboard: dict[str, Any]) -> dict[str, str]:
    """Variable name -> what Grafana sends with every variable on All (its allValue) or its value."""
    values = {"__rate_interval": RATE_INTERVAL, "__interval": INTERVAL, "__range": RANGE}
    for var in dashlint.templating(dashboard):
        if var.get("type") == "query":
            values[var["name"]] = var["allValue"]
        elif var.get("type") == "constant":
            values[var["name"]] = var["query"]
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        name = next(g for g in m.groups() if g)
        assert name in values, f"no test value for ${name} in {expr!r}"
        return values[name]
    return dashlint.VARIABLE_RE.sub(one, expr)


def grafana_regex_escape(value: str) -> str:
    """How Grafana writes a selected value into a Prometheus regex matcher: metacharacters behind a
    backslash that is itself escaped for the PromQL string."""
    return re.sub(r"([$^*{}\[\]'+?.()|\\])", r"\\\\\1", value)


def panel_targets() -> list[tuple[str, str, int, dict[str, Any], dict[str, Any]]]:
    out = []
    for d in committed().values():
        for p in dashlint.panels(d):
            for i, t in enumerate(p.get("targets") or []):
                out.append((d["title"], p["title"], i, t, d))
    return out


def run_target(prom: Prometheus, target: dict[str, Any], values: dict[str, str]) -> list[dict[str, Any]]:
    """The panel's query as Grafana sends it: instant, or a range over the last RANGE_QUERY_SPAN seconds."""
    expr = substitute(target["expr"], values)
    if target.get("instant"):
        return prom.query(expr)
    now = time.time()
    return prom.query_range(expr, now - RANGE_QUERY_SPAN, now, INTERVAL)


TARGETS = panel_targets()


@pytest.mark.parametrize(("dashboard", "panel", "idx", "target", "model"), TARGETS,
                         ids=[f"{d}/{p}/{i}" for d, p, i, _, _ in TARGETS])
def test_panel_query(prometheus: Prometheus, dashboard: str, panel: str, idx: int,
                     target: dict[str, Any], model: dict[str, Any]) -> None:
    result = run_target(prometheus, target, substitutions(model))  # raises when the query fails
    if panel in MAY_BE_EMPTY:
        return
    assert result, f"{dashboard} / {panel} target {idx} returned no data: {target['expr']}"


@pytest.mark.parametrize("dashboard", sorted(d["title"] for d in committed().values()))
def test_variables_list_values(prometheus: Prometheus, dashboard: str) -> None:
    model = next(d for d in committed().values() if d["title"] == dashboard)
    values = substitutions(model)
    for var in dashlint.templating(model):
        if var.get("type") != "query":
            continue
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", dashlint.variable_query(var))
        assert m, var["name"]
        listed = prometheus.label_values(m.group(2), substitute(m.group(1), values))
        assert listed, f"variable {var['name']} of {dashboard} lists no values"
    assert prometheus.label_values("job", "netpol_exporter_build_info") == [SCRAPE_JOB]


def test_policy_drill_down_narrows_the_review(prometheus: Prometheus) -> None:
    """What the Policy link does: the review's flow table with var-policy set to one policy."""
    review = next(d for d in committed().values() if d["uid"] == "netpol-denied-flows")
    table = next(p for p in dashlint.panels(review) if p["title"] == "Denied flows")
    values = substitutions(review)
    everything = run_target(prometheus, table["targets"][0], values)
    policies = sorted({row["metric"]["policy"] for row in everything})
    assert policies, "the demo denied nothing"
    values["policy"] = grafana_regex_escape(policies[0])
    narrowed = run_target(prometheus, table["targets"][0], values)
    assert narrowed and {row["metric"]["policy"] for row in narrowed} == {policies[0]}
    for row in narrowed:
        assert set(row["metric"]) == {"source", "destination", "destination_port", "protocol", "policy",
                                      "reason", "direction"}
        assert float(row["value"][1]) > 0


def flow_rules_read(target: dict[str, Any]) -> list[str]:
    """The recording rules over the flow families that a panel query reads."""
    rules = recording_rules()
    return [sel.name for sel in pq.selectors(dashlint.parse_target(target["expr"]))
            if sel.name in rules and ":networkpolicy_" in sel.name]


RULE_TARGETS = [(d, p, i, t, m) for d, p, i, t, m in TARGETS if flow_rules_read(t) and p not in MAY_BE_EMPTY]


def listed_values(prom: Prometheus, model: dict[str, Any], name: str) -> list[str]:
    """The values the variable `name` offers (its label_values query), plus the empty value for the
    namespaces (non-pod peers), which Grafana's list cannot show but All includes."""
    var = dashlint.template(model, name)
    assert var is not None, name
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", dashlint.variable_query(var))
    assert m, name
    values = prom.label_values(m.group(2), substitute(m.group(1), substitutions(model)))
    return [*values, ""] if name.endswith("namespace") else values


def test_rule_panels_cover_the_by_policy_graphs() -> None:
    assert {p for _, p, _, _, _ in RULE_TARGETS} >= {
        "Denied by policy and direction", "Allowed by policy and direction", "Denied by namespace pair"}


@pytest.mark.parametrize("variable", ["job", "source_namespace", "destination_namespace", "policy"])
@pytest.mark.parametrize(("dashboard", "panel", "idx", "target", "model"), RULE_TARGETS,
                         ids=[f"{d}/{p}/{i}" for d, p, i, _, _ in RULE_TARGETS])
def test_every_variable_filters_the_rule_panels(prometheus: Prometheus, dashboard: str, panel: str, idx: int,
                                                target: dict[str, Any], model: dict[str, Any],
                                                variable: str) -> None:
    """A panel fed by a recording rule honours `variable`: a value nothing has empties it, and the
    panel's series summed over every value the variable offers are the series with All selected."""
    # The last stored evaluation of the rule: every query below, at that instant, reads the same samples.
    at = min(float(prometheus.query(f"max(timestamp({rule}))")[0]["value"][1]) for rule in flow_rules_read(target))
    values = substitutions(model)

    def series(value: str) -> dict[tuple[tuple[str, str], ...], float]:
        expr = substitute(target["expr"], {**values, variable: value})
        return {tuple(sorted(s["metric"].items())): float(s["value"][1]) for s in prometheus.query(expr, at)}

    everything = series(values[variable])
    assert everything, f"{panel}: no data with every variable on All"
    assert series(f"no-such-{variable}") == {}, f"{panel} ignores the {variable} variable"
    parts: dict[tuple[tuple[str, str], ...], float] = {}
    for value in listed_values(prometheus, model, variable):
        for key, number in series(grafana_regex_escape(value)).items():
            parts[key] = parts.get(key, 0.0) + number
    assert parts.keys() == everything.keys()
    for key, number in everything.items():
        assert parts[key] == pytest.approx(number), (panel, variable, key)


def test_forward_flows_and_l7_denials_reach_the_dashboards(prometheus: Prometheus) -> None:
    """Forwarded traffic (direction forward) and L7 denials (reason L7_POLICY_DENIED) show in the review
    table and the by-policy graphs; the per-namespace rules charge forwarded traffic to no namespace."""
    review = next(d for d in committed().values() if d["uid"] == "netpol-denied-flows")
    table = next(p for p in dashlint.panels(review) if p["title"] == "Denied flows")
    rows = [row["metric"] for row in run_target(prometheus, table["targets"][0], substitutions(review))]
    assert {"direction": "forward", "policy": "security.block-egress-forward", "source": "world"}.items() <= next(
        r for r in rows if r["direction"] == "forward").items()
    assert any(r["reason"] == "L7_POLICY_DENIED" and r["destination"] == "shop/cart" for r in rows)
    overview = next(d for d in committed().values() if d["uid"] == "netpol-overview")
    for title, policy in (("Denied by policy and direction", "security.block-egress-forward"),
                          ("Allowed by policy and direction", "security.allow-web-forward")):
        graph = next(p for p in dashlint.panels(overview) if p["title"] == title)
        series = run_target(prometheus, graph["targets"][0], substitutions(overview))
        assert {"policy": policy, "direction": "forward"} in [s["metric"] for s in series]
    by_namespace = prometheus.query("namespace:networkpolicy_dropped_packets:increase5m")
    namespaces = {s["metric"].get("namespace") for s in by_namespace}
    assert "shop" in namespaces and "" not in namespaces and None not in namespaces
    assert prometheus.query('policy:networkpolicy_dropped_packets:increase5m{policy="security.block-egress-forward"}')


def test_allowed_once_counts_each_flow_once(prometheus: Prometheus) -> None:
    """The overview's 'each flow once' total, recomputed from the raw series: a pod-to-pod flow is
    reported at both ends (egress at the source, ingress at the destination) and counts once."""
    overview = next(d for d in committed().values() if d["uid"] == "netpol-overview")
    stat = next(p for p in dashlint.panels(overview) if p["title"] == "Allowed/s (each flow once)")
    at = time.time()
    expr = substitute(stat["targets"][0]["expr"], substitutions(overview))
    once = float(prometheus.query(expr, at)[0]["value"][1])
    series = prometheus.query(f"rate(networkpolicy_allowed_packets_total[{RATE_INTERVAL}])", at)
    expected = sum(float(s["value"][1]) for s in series
                   if s["metric"]["direction"] in ("ingress", "forward", "unknown")
                   or (s["metric"]["direction"] == "egress" and not s["metric"].get("destination_namespace")))
    everything = sum(float(s["value"][1]) for s in series)
    assert once == pytest.approx(expected)
    assert once <= everything
    # the demo has pod-to-pod traffic, reported at both ends: the egress reports are left out
    assert any(s["metric"]["direction"] == "egress" and s["metric"].get("destination_namespace") for s in series)


def test_preview_draws_each_dashboard(prometheus: Prometheus, tmp_path: Path) -> None:
    """dashboards/preview.py (the README pictures) runs every panel query and writes one PNG each."""
    require_module("matplotlib", "dashboards/preview.py draws with it")
    preview = load_module("preview.py")
    assert preview.main(["--prometheus", prometheus.url, "--minutes", "1", "--out", str(tmp_path)]) == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == sorted(f"{d['uid']}.png" for d in committed().values())
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
        if os.environ.get("NETPOL_REFRESH_SCREENSHOT"):  # =1 refreshes the README's pictures
            shutil.copy(png, Path(__file__).parents[2] / "dashboards" / "img" / png.name)


def test_preview_text_never_overlaps_and_rate_axes_start_at_zero(prometheus: Prometheus) -> None:
    """The preview renderer's own bounding boxes: no text over another (titles, tick labels, legends,
    table cells), all inside the picture; y axes of non-negative data start at 0; table text is at least
    the size of axis text."""
    require_module("matplotlib", "dashboards/preview.py draws with it")
    import matplotlib.pyplot as plt

    preview = load_module("preview.py")
    assert preview.FONT["table"] >= preview.FONT["axis"]
    for dashboard in committed().values():
        fig = preview.render(dashboard, prometheus.url, 1)
        try:
            boxes = preview.text_boxes(fig)
            assert len(boxes) > 30, dashboard["uid"]
            assert preview.overlapping_texts(fig) == [], dashboard["uid"]
            width, height = fig.bbox.width, fig.bbox.height
            outside = [text for text, box in boxes if box.x0 < -0.5 or box.y0 < -0.5 or box.x1 > width + 0.5
                       or box.y1 > height + 0.5]
            assert outside == [], (dashboard["uid"], outside)
            plotted = [ax for ax in fig.axes if ax.lines]
            assert plotted, dashboard["uid"]
            for ax in plotted:
                ys = [y for line in ax.lines for y in line.get_ydata()]
                if min(ys) >= 0:
                    assert ax.get_ylim()[0] == 0, (dashboard["uid"], ax.get_ylim())
        finally:
            plt.close(fig)
