#!/usr/bin/env python3
"""Draw an approximate picture of each dashboard from its JSON and live Prometheus data.

Grafana cannot be installed on the build machine, so this script draws the layout itself. It reads
gridPos, titles and queries from dashboards/*.json, runs each query against a Prometheus with
Grafana's variables substituted, and draws time series as lines, stats as numbers and tables as
text. The result looks like the dashboard but is not a Grafana screenshot.

    python dashboards/preview.py --prometheus http://127.0.0.1:9090 [--minutes 10] [--out dashboards/img]

Needs matplotlib (in the `test` extra of pyproject.toml, or `pip install matplotlib`); the exporter
itself does not.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIABLE_RE = re.compile(r"\$(\w+)|\$\{([^}:]+)(?::[^}]*)?\}|\[\[([^\]:]+)(?::[^\]]*)?\]\]")
BACKGROUND, PANEL, TEXT, MUTED = "#111217", "#181b1f", "#d8d9da", "#8e8e8e"
PALETTE = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#705da0",
           "#37872d", "#fade2a"]
ROW_PX, COL_PX = 34, 68  # Grafana grid: 24 columns; one height unit is about 30 px plus margin


def query(prometheus: str, path: str, **params: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as response:
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise RuntimeError(f"{params.get('query')}: {body.get('error')}")
    return list(body["data"]["result"])


def substitute(expr: str, dashboard: dict[str, Any], rate_interval: str, range_: str) -> str:
    values = {"__rate_interval": rate_interval, "__interval": "15s", "__range": range_}
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            values[var["name"]] = var["allValue"]
        elif var["type"] == "constant":
            values[var["name"]] = var["query"]
    return VARIABLE_RE.sub(lambda m: values.get(next(g for g in m.groups() if g), m.group()), expr)


def legend(fmt: str, metric: dict[str, str]) -> str:
    if fmt in ("", "__auto"):
        return ", ".join(f"{k}={v}" for k, v in sorted(metric.items())) or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)


def human(value: float, unit: str) -> str:
    suffix = {"pps": " p/s", "cps": " c/s", "s": " s", "percentunit": ""}.get(unit, "")
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    for size, letter in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:.2f}{letter}{suffix}"
    return f"{value:.3g}{suffix}" if value else f"0{suffix}"


def draw(dashboard: dict[str, Any], prometheus: str, minutes: int, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = dashboard["panels"]
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    width_px, height_px = 24 * COL_PX, bottom * ROW_PX + 60
    fig = plt.figure(figsize=(width_px / 100, height_px / 100), dpi=100, facecolor=BACKGROUND)
    fig.text(0.01, 1 - 20 / height_px, dashboard["title"], color=TEXT, fontsize=14, va="center")
    fig.text(0.99, 1 - 20 / height_px, "preview drawn by dashboards/preview.py from the JSON and live demo "
             "data - not a Grafana screenshot", color=MUTED, fontsize=8, va="center", ha="right")
    end = time.time()
    range_ = f"{minutes}m"
    for p in panels:
        g = p["gridPos"]
        left, top = g["x"] / 24, 1 - (40 + g["y"] * ROW_PX) / height_px
        w, h = g["w"] / 24, g["h"] * ROW_PX / height_px
        if p["type"] == "row":
            fig.text(left + 0.005, top - h / 2, p["title"], color=TEXT, fontsize=11, weight="bold", va="center")
            continue
        ax = fig.add_axes((left + 0.003, top - h + 0.004, w - 0.006, h - 0.008))
        ax.set_facecolor(PANEL)
        for spine in ax.spines.values():
            spine.set_color("#2c3235")
        ax.set_title(p["title"], color=TEXT, fontsize=9, loc="left")
        unit = p["fieldConfig"]["defaults"].get("unit", "short")
        targets = p.get("targets", [])
        if p["type"] == "timeseries":
            ax.tick_params(colors=MUTED, labelsize=6)
            n = 0
            for t in targets:
                expr = substitute(t["expr"], dashboard, "1m", range_)
                for series in query(prometheus, "query_range", query=expr, start=str(end - minutes * 60),
                                    end=str(end), step="15")[:8]:
                    xs = [(float(ts) - end) / 60 for ts, _ in series["values"]]
                    ys = [float(v) for _, v in series["values"]]
                    ax.plot(xs, ys, color=PALETTE[n % len(PALETTE)], linewidth=1,
                            label=legend(t.get("legendFormat", ""), series["metric"])[:60])
                    n += 1
            ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _, u=unit: human(v, u)))
            ax.tick_params(axis="y", direction="in", pad=-3)  # labels inside: neighbours cover the outside
            for label in ax.get_yticklabels():
                label.set_horizontalalignment("left")
            ax.set_xlabel("minutes before now", color=MUTED, fontsize=6, labelpad=1)
            if n:
                ax.legend(fontsize=5, loc="upper left", facecolor=PANEL, labelcolor=TEXT, edgecolor=PANEL,
                          ncol=2 if n > 4 else 1)
            else:
                ax.text(0.5, 0.5, "No data", color=MUTED, ha="center", va="center", transform=ax.transAxes)
            continue
        ax.set_xticks([])
        ax.set_yticks([])
        if p["type"] == "stat":
            t = targets[0]
            expr = substitute(t["expr"], dashboard, "1m", range_)
            result = query(prometheus, "query", query=expr, time=str(end))
            value = float(result[0]["value"][1]) if result else 0.0
            if p["fieldConfig"]["defaults"].get("decimals") == 0:
                value = round(value)
            text = human(value, unit) if result else "No data"
            red = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
            color = "#f2495c" if result and len(red) > 1 and float(result[0]["value"][1]) >= red[1]["value"] \
                else "#73bf69"
            ax.text(0.5, 0.45, text, color=color if result else MUTED, fontsize=20, ha="center", va="center",
                    transform=ax.transAxes)
        elif p["type"] == "table":
            draw_table(ax, p, dashboard, prometheus, end, range_)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{dashboard['uid']}.png"
    fig.savefig(path, facecolor=BACKGROUND)
    plt.close(fig)
    return path


def draw_table(ax: Any, p: dict[str, Any], dashboard: dict[str, Any], prometheus: str, end: float,
               range_: str) -> None:
    names = {o["matcher"]["options"]: o["properties"][0]["value"] for o in p["fieldConfig"]["overrides"]}
    order = p["transformations"][0]["options"]["indexByName"]
    columns = sorted(order, key=order.get)
    expr = substitute(p["targets"][0]["expr"], dashboard, "1m", range_)
    rows = sorted(query(prometheus, "query", query=expr, time=str(end)), key=lambda r: -float(r["value"][1]))
    header = [names.get(c, c) for c in columns]
    lines = [[r["metric"].get(c, "") if c != "Value" else f"{float(r['value'][1]):.0f}" for c in columns]
             for r in rows[: max(1, p["gridPos"]["h"] - 2)]]
    if not lines:
        ax.text(0.5, 0.5, "No data", color=MUTED, ha="center", va="center", transform=ax.transAxes)
        return
    widths = [max(len(str(x)) for x in [h, *(line[i] for line in lines)]) + 2 for i, h in enumerate(header)]
    step = 1 / (len(lines) + 1.5)
    for row_i, line in enumerate([header, *lines]):
        x = 0.01
        for i, cell in enumerate(line):
            ax.text(x, 1 - (row_i + 1) * step, str(cell)[:48], color=TEXT if row_i else "#6e9fff",
                    fontsize=6, va="center", transform=ax.transAxes, family="monospace")
            x += min(widths[i], 50) / sum(min(w, 50) for w in widths) * 0.98


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--prometheus", required=True, help="base URL of a Prometheus with the data")
    parser.add_argument("--minutes", type=int, default=10, help="time range to draw (default 10)")
    parser.add_argument("--out", type=Path, default=HERE / "img")
    args = parser.parse_args(argv)
    for path in sorted(HERE.glob("*.json")):
        print(draw(json.loads(path.read_text(encoding="utf-8")), args.prometheus.rstrip("/"), args.minutes,
                   args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
