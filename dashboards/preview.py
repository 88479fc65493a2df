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
MAX_SERIES = 8  # lines per time-series panel


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


TITLE_PX, TICK_PX, LEGEND_ROW_PX, YLABEL_PX = 20, 16, 11, 50  # bands inside a panel, in pixels
FONT = {"title": 9, "axis": 7, "legend": 7, "table": 8}  # table text is never smaller than axis text


def render(dashboard: dict[str, Any], prometheus: str, minutes: int) -> Any:
    """The dashboard as a matplotlib Figure: every text stays inside its panel, none overlaps another."""
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

    def box(x_px: float, y_px: float, w_px: float, h_px: float) -> tuple[float, float, float, float]:
        """Figure fractions of a rectangle given in pixels from the top-left corner."""
        return x_px / width_px, 1 - (y_px + h_px) / height_px, w_px / width_px, h_px / height_px

    for p in panels:
        g = p["gridPos"]
        x_px, y_px = g["x"] * COL_PX + 3, 40 + g["y"] * ROW_PX + 3
        w_px, h_px = g["w"] * COL_PX - 6, g["h"] * ROW_PX - 6
        if p["type"] == "row":
            fig.text(x_px / width_px, 1 - (y_px + h_px / 2) / height_px, p["title"], color=TEXT, fontsize=11,
                     weight="bold", va="center")
            continue
        frame = fig.add_axes(box(x_px, y_px, w_px, h_px))
        frame.set_facecolor(PANEL)
        frame.set_xticks([])
        frame.set_yticks([])
        for spine in frame.spines.values():
            spine.set_color("#2c3235")
        frame.text(6 / w_px, 1 - 4 / h_px, p["title"], color=TEXT, fontsize=FONT["title"], va="top",
                   transform=frame.transAxes)
        unit = p["fieldConfig"]["defaults"].get("unit", "short")
        targets = p.get("targets", [])
        inner = (x_px, y_px + TITLE_PX, w_px, h_px - TITLE_PX)  # below the title
        if p["type"] == "timeseries":
            draw_timeseries(fig, box, inner, targets, dashboard, prometheus, end, minutes, unit)
        elif p["type"] == "stat":
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
            frame.text(0.5, 0.45, text, color=color if result else MUTED, fontsize=20, ha="center", va="center",
                       transform=frame.transAxes)
        elif p["type"] == "table":
            draw_table(frame, p, dashboard, prometheus, end, range_, h_px)
    return fig


def draw_timeseries(fig: Any, box: Any, inner: tuple[float, float, float, float], targets: list[dict[str, Any]],
                    dashboard: dict[str, Any], prometheus: str, end: float, minutes: int, unit: str) -> None:
    """Lines in an axes inset in the panel, y labels left of it, x labels below, the legend under those."""
    import matplotlib.ticker

    x_px, y_px, w_px, h_px = inner
    lines: list[tuple[list[float], list[float], str]] = []
    for t in targets:
        expr = substitute(t["expr"], dashboard, "1m", f"{minutes}m")
        for series in query(prometheus, "query_range", query=expr, start=str(end - minutes * 60), end=str(end),
                            step="15"):
            if len(lines) == MAX_SERIES:
                break
            xs = [(float(ts) - end) / 60 for ts, _ in series["values"]]
            ys = [float(v) for _, v in series["values"]]
            lines.append((xs, ys, legend(t.get("legendFormat", ""), series["metric"])))
    columns = max(1, min(3, int(w_px // 260)))
    legend_rows = -(-len(lines) // columns)
    plot_h = h_px - TICK_PX - legend_rows * LEGEND_ROW_PX - 14
    ax = fig.add_axes(box(x_px + YLABEL_PX, y_px + 10, w_px - YLABEL_PX - 10, plot_h))
    ax.set_facecolor(PANEL)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(colors=MUTED, labelsize=FONT["axis"], length=2, pad=2)
    if not lines:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(0.5, 0.5, "No data", color=MUTED, ha="center", va="center", transform=ax.transAxes)
        return
    for n, (xs, ys, _label) in enumerate(lines):
        ax.plot(xs, ys, color=PALETTE[n % len(PALETTE)], linewidth=1)
    values = [v for _, ys, _ in lines for v in ys]
    if min(values) >= 0:  # counters' rates and counts: the axis starts at 0, never below
        ax.set_ylim(0, max(values) * 1.15 or 1)
    ax.set_xlim(-minutes, 0)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=max(2, int(plot_h // 28)), min_n_ticks=2))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _, u=unit: human(v, u)))
    ticks = matplotlib.ticker.MaxNLocator(nbins=max(2, int(w_px // 90)), integer=True).tick_values(-minutes, 0)
    ax.set_xticks([t for t in ticks if -minutes < t <= 0])  # none at the left edge, under the y labels
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.0f} min" if v else "now"))
    col_w = (w_px - 12) / columns
    for n, (_xs, _ys, label) in enumerate(lines):
        row, col = divmod(n, columns)
        lx = x_px + 6 + col * col_w
        ly = y_px + h_px - (legend_rows - row) * LEGEND_ROW_PX - 2
        fig.lines.append(matplotlib.lines.Line2D(
            [lx / fig.bbox.width, (lx + 12) / fig.bbox.width], [1 - (ly + 5) / fig.bbox.height] * 2,
            color=PALETTE[n % len(PALETTE)], linewidth=1.5, transform=fig.transFigure))
        fig.text((lx + 16) / fig.bbox.width, 1 - (ly + 5) / fig.bbox.height,
                 shorten(label, int((col_w - 22) / char_px(FONT["legend"], 0.62))), color=TEXT,
                 fontsize=FONT["legend"], va="center")


def char_px(points: float, em: float) -> float:
    """Width in pixels (at 100 dpi) of a character of `em` ems in a font of `points` points."""
    return points * 100 / 72 * em


def shorten(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(1, chars - 1)] + "…"


def draw(dashboard: dict[str, Any], prometheus: str, minutes: int, out: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = render(dashboard, prometheus, minutes)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{dashboard['uid']}.png"
    fig.savefig(path, facecolor=BACKGROUND)
    plt.close(fig)
    return path


def text_boxes(fig: Any) -> list[tuple[str, Any]]:
    """(text, bounding box in pixels) of every non-empty text the renderer draws (tick labels outside
    an axis' range exist but are not drawn: recording the draw calls leaves them out)."""
    import matplotlib.text

    found: list[tuple[str, Any]] = []
    original = matplotlib.text.Text.draw

    def record(self: Any, renderer: Any) -> None:
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            found.append((self.get_text(), self.get_window_extent(renderer)))

    matplotlib.text.Text.draw = record  # type: ignore[method-assign]
    try:
        fig.canvas.draw()
    finally:
        matplotlib.text.Text.draw = original  # type: ignore[method-assign]
    return found


def overlapping_texts(fig: Any) -> list[tuple[str, str]]:
    """Pairs of texts whose bounding boxes intersect (a fraction of a pixel of contact aside)."""
    boxes = text_boxes(fig)
    pairs = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            if (min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0) > 0.5
                    and min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0) > 0.5):
                pairs.append((a, b))
    return pairs


def draw_table(ax: Any, p: dict[str, Any], dashboard: dict[str, Any], prometheus: str, end: float,
               range_: str, h_px: float) -> None:
    names = {o["matcher"]["options"]: o["properties"][0]["value"] for o in p["fieldConfig"]["overrides"]}
    order = p["transformations"][0]["options"]["indexByName"]
    columns = sorted(order, key=order.get)
    expr = substitute(p["targets"][0]["expr"], dashboard, "1m", range_)
    rows = sorted(query(prometheus, "query", query=expr, time=str(end)), key=lambda r: -float(r["value"][1]))
    header = [names.get(c, c) for c in columns]
    row_px = FONT["table"] * 2.2
    fits = max(1, int((h_px - TITLE_PX - 8) // row_px) - 1)
    lines = [[r["metric"].get(c, "") if c != "Value" else f"{float(r['value'][1]):.0f}" for c in columns]
             for r in rows[:fits]]
    if not lines:
        ax.text(0.5, 0.5, "No data", color=MUTED, ha="center", va="center", transform=ax.transAxes)
        return
    widths = [min(max(len(str(x)) for x in [h, *(line[i] for line in lines)]), 40) + 2
              for i, h in enumerate(header)]
    # DejaVu Sans Mono: 0.6 em per character, 0.64 once the renderer rounds the advance to whole pixels
    panel_chars = ax.bbox.width / char_px(FONT["table"], 0.65)
    scale = min(1.0, (panel_chars - 2) / sum(widths))
    for row_i, line in enumerate([header, *lines]):
        x = 6 / ax.bbox.width
        y = 1 - (TITLE_PX + 6 + (row_i + 0.5) * row_px) / h_px
        for i, cell in enumerate(line):
            chars = max(3, int(widths[i] * scale) - 1)
            ax.text(x, y, shorten(str(cell), chars), color=TEXT if row_i else "#6e9fff", fontsize=FONT["table"],
                    va="center", transform=ax.transAxes, family="monospace")
            x += widths[i] * scale / panel_chars


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
