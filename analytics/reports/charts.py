"""A report's trend charts: SVG text for HTML, PNG bytes for PDF.

Drawn with matplotlib's object API (a `Figure` on its own Agg canvas), never pyplot: reports are
rendered in server threads and pyplot's global figure state is not thread-safe. Output is made
byte-stable where matplotlib allows (a fixed SVG hash salt, no dates in metadata), so the same data
renders to the same document. Colours are Okabe-Ito (colour-blind safe), and the two lines of a
chart also differ by marker and dash so they read in grey print.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter, MaxNLocator

from analytics import figures
from analytics.reports.content import DayPoint

# Read when an SVG is written; without a salt matplotlib draws random ids and no two renders match.
# One fixed value for the process is harmless to any other SVG it writes.
if not matplotlib.rcParams["svg.hashsalt"]:
    matplotlib.rcParams["svg.hashsalt"] = "wrm-report"

BLUE, ORANGE, GREEN, VERMILLION, INK, GRID = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#222222", "#DDDDDD"
# Inches. The SVG is narrow so that its 9-10 pt labels stay readable when a phone scales it to
# ~360 px; the PNG spans an A4 text column (170 mm) at print size.
SVG_SIZE = (4.8, 2.7)
PNG_SIZE = (6.6, 2.6)
PNG_DPI = 170
NO_DATA = "no runs in these days"
# Figures are per call, but matplotlib's text layout and font caches are shared by the process and
# not documented as thread-safe: reports are drawn one at a time (about a second each).
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    description: str  # what the chart shows, for a screen reader (aria-label) and alt text


CHARTS = (
    Chart("rates", "First-pass and success rate by day", "First-pass and success rates per UTC day"),
    Chart("p95", "p95 duration by day", "95th percentile run duration per UTC day"),
    Chart("cost", "Cost per run by day", "Average cost per finished run per UTC day, in US dollars"),
    Chart("throughput", "Runs per day", "Number of runs started per UTC day"),
)


def svgs(trend: Sequence[DayPoint]) -> list[tuple[Chart, str]]:
    """Each chart as an `<svg>` element to inline in HTML: no prolog, no metadata, no namespace
    URIs (the HTML parser supplies them), sized by its viewBox to the width of its box."""
    with _LOCK:
        return [(chart, _svg(draw(chart.key, trend, SVG_SIZE), chart.key)) for chart in CHARTS]


def pngs(trend: Sequence[DayPoint], dpi: int = PNG_DPI) -> list[tuple[Chart, bytes]]:
    with _LOCK:
        return [(chart, png(draw(chart.key, trend, PNG_SIZE), dpi)) for chart in CHARTS]


def draw(key: str, trend: Sequence[DayPoint], size: tuple[float, float] = PNG_SIZE) -> Figure:
    """One chart as a Figure on an Agg canvas."""
    chart = next((c for c in CHARTS if c.key == key), None)
    if chart is None:
        raise ValueError(f"{key!r} is not a chart ({', '.join(c.key for c in CHARTS)})")
    if not has_data(key, trend):  # a short strip that says so, not a page of empty axes
        size = (size[0], 0.9)
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(chart.title, loc="left", fontsize=11, fontweight="bold", color=INK)
    days = [p.day for p in trend]
    if key == "rates":
        series = [
            ("First-pass", [p.first_pass_rate for p in trend], BLUE, "o", "-"),
            ("Success", [p.success_rate for p in trend], ORANGE, "s", "--"),
        ]
        if _lines(ax, days, series):
            ax.set_ylim(0, 1.0)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: figures.percent(v, 0)))
            ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2, frameon=False, fontsize=9,
                      borderaxespad=0.2)  # fmt: skip
            ax.set_title(chart.title, loc="left", fontsize=11, fontweight="bold", color=INK, pad=22)
    elif key == "p95":
        values = [p.p95_duration_s for p in trend]
        unit, scale = figures.duration_scale(max((v for v in values if v is not None), default=0.0))
        if _lines(ax, days, [("p95", [None if v is None else v / scale for v in values], GREEN, "o", "-")]):
            ax.set_ylabel(f"p95 ({unit})", fontsize=9)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: figures.plain(v)))
    elif key == "cost":
        if _lines(ax, days, [("cost", [p.cost_per_run_usd for p in trend], VERMILLION, "o", "-")]):
            ax.set_ylabel("per run (USD)", fontsize=9)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: figures.money(v)))
    else:
        if any(p.runs for p in trend):
            ax.bar([d.toordinal() for d in days], [p.runs for p in trend], width=0.7, color=BLUE)
            _round_top(ax, max(p.runs for p in trend))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5, steps=[1, 2, 5, 10]))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: figures.count(v)))
            _dates(ax, days)
        else:
            _no_data(ax)
    return fig


def has_data(key: str, trend: Sequence[DayPoint]) -> bool:
    if key == "throughput":
        return any(p.runs for p in trend)
    field = {"rates": "success_rate", "p95": "p95_duration_s", "cost": "cost_per_run_usd"}[key]
    values = [getattr(p, field) for p in trend]
    if key == "rates":
        values += [p.first_pass_rate for p in trend]
    return any(not figures.missing(v) for v in values)


def _lines(ax: Any, days: list[date], series: list[tuple[str, list[float | None], str, str, str]]) -> bool:
    """Draw the series (None is a gap); False, with the no-data text, when every value is None."""
    if not any(not figures.missing(v) for _, values, *_ in series for v in values):
        _no_data(ax)
        return False
    x = [d.toordinal() for d in days]
    for label, values, colour, marker, dash in series:
        y = [float("nan") if v is None or figures.missing(v) else float(v) for v in values]
        ax.plot(x, y, label=label, color=colour, marker=marker, markersize=4, linestyle=dash, linewidth=1.8)
    _round_top(
        ax,
        max(float(v) for _, values, *_ in series for v in values if v is not None and not figures.missing(v)),
    )
    _dates(ax, days)
    return True


def _dates(ax: Any, days: list[date]) -> None:
    """Day ticks as `Nov 25`, at most 8 of them (every day up to a week); the year is in the header."""
    step = max(1, -(-len(days) // 8))
    ticks = days[::step]
    ax.xaxis.set_major_locator(FixedLocator([d.toordinal() for d in ticks]))
    ax.xaxis.set_major_formatter(FixedFormatter([f"{d:%b} {d.day}" for d in ticks]))
    if days:
        ax.set_xlim(days[0].toordinal() - 0.6, days[-1].toordinal() + 0.6)
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=9, colors=INK)


def _round_top(ax: Any, top: float) -> None:
    """End the y axis on the first tick at or above the data, so the top value has a gridline."""
    locator = MaxNLocator(nbins=5, steps=[1, 2, 5, 10])
    ax.yaxis.set_major_locator(locator)
    ticks = [t for t in locator.tick_values(0, top) if t >= top]
    ax.set_ylim(0, ticks[0] if ticks and top > 0 else 1)


def _no_data(ax: Any) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.3, NO_DATA, ha="center", va="center", fontsize=11, color="#555555", transform=ax.transAxes)


_STRIP: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"<\?xml[^>]*\?>\s*"), ""),
    (re.compile(r"<!DOCTYPE[^>]*>\s*"), ""),
    (re.compile(r"<metadata>.*?</metadata>\s*", re.S), ""),
    (re.compile(r'\s+xmlns(:\w+)?="[^"]*"'), ""),
    (re.compile(r'(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"'), r"\1"),
)


_IDS = re.compile(r'(\bid="|href="#|url\(#)([^"()]+)')


def _svg(fig: Figure, prefix: str) -> str:
    """Inline-ready SVG; its ids get `prefix` so charts on one page never share an id."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    for pattern, replacement in _STRIP:
        text = pattern.sub(replacement, text)
    return _IDS.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text).strip()


def png(fig: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()
