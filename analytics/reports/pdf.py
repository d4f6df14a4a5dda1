"""A report as an A4 PDF (reportlab platypus): the HTML's content and order, charts as PNG.

Text is set in DejaVu Sans, taken from matplotlib's own data directory, so `–`, `≥`, `±` and
non-Latin names render and `pdftotext` extracts the very strings the HTML shows. User text is
escaped for Paragraph's mini-markup (`<`, `&`). `invariant=1` keeps dates and ids out of the file,
so one report renders to the same bytes.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, TableStyle
from reportlab.platypus import Table as PdfTable

from analytics import significance
from analytics.reports import charts
from analytics.reports.render import Table, View

FONT, BOLD, MONO = "DejaVuSans", "DejaVuSans-Bold", "DejaVuSansMono"
MARGIN = 16 * mm
WIDTH = A4[0] - 2 * MARGIN
INK, MUTED = colors.HexColor("#1d1d1f"), colors.HexColor("#55555a")
LINE, SOFT = colors.HexColor("#c8c8cd"), colors.HexColor("#f2f2f4")
BADGES = {  # text, background: the HTML's badge colours
    "better": ("#004a75", "#dcecf7"),
    "worse": ("#8a3300", "#fbe3d6"),
    "same": ("#3d3d42", "#ececef"),
    "few": ("#5c4300", "#fff0c2"),
    "none": ("#3d3d42", "#ffffff"),
}
SAMPLE_NOTE = (
    "Sample: runs (or days, or scored runs) behind each figure, current / before. “Better” or “worse” "
    "only when a significance test passed (p &lt; {alpha}) on enough runs."
)
_fonts_lock = threading.Lock()
_fonts_ready = False


def _register_fonts() -> None:
    global _fonts_ready
    with _fonts_lock:
        if _fonts_ready:
            return
        ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        for name in (FONT, BOLD, MONO):
            pdfmetrics.registerFont(TTFont(name, str(ttf / f"{name}.ttf")))
        pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)
        _fonts_ready = True


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=FONT, fontSize=9, leading=12, textColor=INK)
    return {
        "base": base,
        "title": ParagraphStyle("title", base, fontName=BOLD, fontSize=16, leading=20, spaceAfter=6),
        "h2": ParagraphStyle(
            "h2", base, fontName=BOLD, fontSize=12, leading=15, spaceBefore=12, spaceAfter=6
        ),
        "meta": ParagraphStyle("meta", base, fontSize=8.5, leading=11),
        "cell": ParagraphStyle("cell", base, fontSize=8, leading=10),
        "num": ParagraphStyle("num", base, fontSize=8, leading=10, alignment=TA_RIGHT),
        "head": ParagraphStyle("head", base, fontName=BOLD, fontSize=8, leading=10),
        "headnum": ParagraphStyle("headnum", base, fontName=BOLD, fontSize=8, leading=10, alignment=TA_RIGHT),
        "mono": ParagraphStyle("mono", base, fontName=MONO, fontSize=7, leading=9),
        "small": ParagraphStyle("small", base, fontSize=7.5, leading=9.5, textColor=MUTED),
        "empty": ParagraphStyle("empty", base, textColor=MUTED),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    """User text as a Paragraph: escaped, so `<b>` or `&amp;` in a name is shown, not obeyed."""
    return Paragraph(escape(text), style)


_GRID = [
    ("LINEBELOW", (0, 0), (-1, -1), 0.5, LINE),
    ("BACKGROUND", (0, 0), (-1, 0), SOFT),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 4),
    ("RIGHTPADDING", (0, 0), (-1, -1), 4),
    ("TOPPADDING", (0, 0), (-1, -1), 3),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
]


def _table(
    t: Table, s: dict[str, ParagraphStyle], widths: list[float], mono: tuple[int, ...] = ()
) -> Flowable:
    if not t.rows:
        return _p(t.empty, s["empty"])
    head = [_p(h, s["headnum" if num else "head"]) for h, num in zip(t.headers, t.numeric, strict=True)]
    body = [
        [
            _p(cell, s["mono"] if i in mono else s["num"] if t.numeric[i] else s["cell"])
            for i, cell in enumerate(row)
        ]
        for row in t.rows
    ]
    table = PdfTable([head, *body], colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(TableStyle(_GRID))
    return table


def _snapshot(view: View, s: dict[str, ParagraphStyle]) -> Flowable:
    headers: tuple[str, ...]
    if view.compared:
        headers = ("Indicator", "Current", "Before", "Change", "Relative", "Sample", "Verdict")
        widths = [34, 18, 18, 18, 16, 25, 49]
    else:
        headers, widths = ("Indicator", "Current", "Sample"), [80, 49, 49]
    rows: list[list[Any]] = [
        [_p(h, s["head"] if i in (0, 6) else s["headnum"]) for i, h in enumerate(headers)]
    ]
    for r in view.snapshot:
        label = _p(r.label, ParagraphStyle("label", s["cell"], fontName=BOLD))
        if not view.compared:
            rows.append([label, _p(r.current, s["num"]), _p(r.n, s["num"])])
            continue
        fg, bg = BADGES.get(r.badge, BADGES["none"])
        badge = f'<span backColor="{bg}" color="{fg}"><b>\u00a0{escape(r.verdict)}\u00a0</b></span>'
        verdict = badge if r.verdict else "–"
        cell = [Paragraph(verdict, s["cell"])]
        if r.note:
            cell.append(_p(r.note, s["small"]))
        rows.append(
            [label, *(_p(x, s["num"]) for x in (r.current, r.before, r.change, r.relative, r.n)), cell]
        )
    table = PdfTable(rows, colWidths=[w * mm for w in widths], repeatRows=1)
    table.setStyle(TableStyle(_GRID))
    return table


def _boxed(text: str, s: dict[str, ParagraphStyle], edge: str, fill: str) -> Flowable:
    box = PdfTable([[Paragraph(text, s["base"])]], colWidths=[WIDTH])
    box.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor(fill)),
        ("LINEBEFORE", (0, 0), (0, -1), 4, colors.HexColor(edge)),
        ("LEFTPADDING", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, -1), 6),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
    ]))  # fmt: skip
    return box


def _story(view: View, s: dict[str, ParagraphStyle]) -> list[Flowable]:
    story: list[Flowable] = [_p(f"{view.workflow}: indicator report", s["title"])]
    meta = [[_p(name, s["small"]), _p(value, s["meta"])] for name, value in view.meta]
    info = PdfTable(meta, colWidths=[32 * mm, WIDTH - 32 * mm], hAlign="LEFT")
    info.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
    ]))  # fmt: skip
    story += [info, Spacer(1, 8)]
    if view.no_runs:
        story += [_boxed(f"<b>{escape(view.no_runs)}</b>", s, "#1d1d1f", "#ffffff"), Spacer(1, 6)]
    if view.unpriced:
        hint = 'Add them to <font name="DejaVuSansMono">prices</font> in the settings.'
        story += [_boxed(f"{escape(view.unpriced)} {hint}", s, "#E69F00", "#fff8e6"), Spacer(1, 6)]

    story.append(_p("Effectiveness", s["h2"]))
    story.append(_snapshot(view, s) if view.snapshot else _p("No indicators.", s["empty"]))
    if view.compared:
        story.append(Spacer(1, 4))
        story.append(Paragraph(SAMPLE_NOTE.format(alpha=significance.ALPHA), s["small"]))

    benefits = _table(view.benefits, s, [16, 24, 22, 22, 22, 24, 22, 26])
    story.append(KeepTogether([_p("Time to benefit", s["h2"]), benefits]))
    drawn = charts.pngs(view.trend_points)
    for i, (_chart, png) in enumerate(drawn):
        px_width, px_height = ImageReader(io.BytesIO(png)).getSize()
        image = Image(io.BytesIO(png), width=WIDTH, height=WIDTH * px_height / px_width)
        image.hAlign = "CENTER"
        block: list[Flowable] = [_p("Trends by day", s["h2"])] if i == 0 else [Spacer(1, 6)]
        story.append(KeepTogether([*block, image]))
    failures = _table(view.failures, s, [70, 32, 14, 62], mono=(3,))
    story.append(KeepTogether([_p("Top failure reasons", s["h2"]), failures]))
    retries = _table(view.retries, s, [53, 22, 25, 22, 30, 26])
    story.append(KeepTogether([_p("Retries by step", s["h2"]), retries]))
    if view.notes:
        story.append(_p("Notes", s["h2"]))
        story += [Paragraph(escape(n), s["base"], bulletText="•") for n in view.notes]
    story += [Spacer(1, 12), _p("Every figure is read from WRM's indicator views.", s["small"])]
    return story


class _NumberedCanvas(Canvas):  # type: ignore[misc]
    """Defers each page so the footer can say `page 2 of 5`."""

    footer = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(FONT, 7.5)
            self.setFillColor(MUTED)
            self.drawString(MARGIN, 9 * mm, self.footer)
            self.drawRightString(A4[0] - MARGIN, 9 * mm, f"page {self._pageNumber} of {len(self._pages)}")
            super().showPage()
        super().save()


def render(view: View) -> bytes:
    _register_fonts()
    s = _styles()
    buffer = io.BytesIO()
    title = f"{view.workflow}: indicator report"
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 4 * mm,
        title=title,
        author="WRM",
        creator="WRM",
        invariant=1,
    )
    footer = title if len(title) <= 70 else title[:69] + "…"
    canvas = type("_Canvas", (_NumberedCanvas,), {"footer": f"{footer} · {view.days}"})
    doc.build(_story(view, s), canvasmaker=canvas)
    return buffer.getvalue()
