"""Report renderers on hand-built ReportData (tests/report_samples.py): no server, no warehouse.

The HTML must reference nothing outside itself, hostile text must stay text in every format, the
PDF must carry the HTML's figure strings (read back with poppler's pdftotext), Markdown tables keep
their columns with pipes in the data, and a render is byte-for-byte repeatable."""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pytest

from analytics.reports import charts
from analytics.reports.render import BADGES, render, view
from analytics.reports.request import FORMATS
from tests import report_samples as rs

POPPLER = shutil.which("pdftotext") and shutil.which("pdftoppm")
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftotext, pdftoppm) is not installed")
LINK_ATTRS = {"src", "href", "xlink:href", "action", "formaction", "srcset", "poster", "data", "background"}


@cache
def doc(sample: str, fmt: str) -> bytes:
    """One render per sample and format for the whole module: charts take most of the time."""
    return render(rs.SAMPLES[sample](), fmt)


class Page(HTMLParser):
    """Every tag, attribute, style text and text node of an HTML page, as a browser would see them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._in: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(name, value or "") for name, value in attrs]
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._in:
            del self._in[len(self._in) - 1 - self._in[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "style":
            self.styles.append(data)
        else:
            self.text.append(data)

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def html(sample: str) -> str:
    return doc(sample, "html").decode()


def md(sample: str) -> str:
    return doc(sample, "md").decode()


@cache
def pdf_text(sample: str) -> str:
    # -raw: content-stream order. The default layout mode reorders a table's cells and drops the
    # spaces inside a short right-aligned cell (`n = 7 / 7` reads `n=7/7`) that the PDF draws.
    cmd = ["pdftotext", "-raw", "-enc", "UTF-8", "-", "-"]
    out = subprocess.run(cmd, input=doc(sample, "pdf"), capture_output=True, check=False)
    assert out.returncode == 0, out.stderr
    return " ".join(out.stdout.decode().split())


def test_unknown_format_is_refused_naming_the_formats() -> None:
    with pytest.raises(ValueError, match="html, pdf, md"):
        render(rs.no_runs(), "docx")
    assert FORMATS == ("html", "pdf", "md")


@pytest.mark.parametrize("sample", sorted(rs.SAMPLES))
def test_html_references_nothing_outside_itself(sample: str) -> None:
    page = Page(html(sample))
    assert "script" not in page.tags and "link" not in page.tags
    assert not {"iframe", "object", "embed", "img", "base", "form", "video", "audio"} & set(page.tags)
    for name, value in page.attrs:
        assert "http://" not in value and "https://" not in value, (name, value[:80])
        if name in LINK_ATTRS:
            assert value.startswith(("data:", "#")), (name, value[:80])
        if name == "style" or "url(" in value:
            assert all(u.startswith(("#", "data:")) for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", value))
        assert not name.startswith("on"), name
    css = "\n".join(page.styles)
    assert "@import" not in css and "http://" not in css and "https://" not in css
    assert all(u.startswith(("#", "data:")) for u in re.findall(r"url\(\s*['\"]?([^)'\"]*)", css))
    assert ("name", "viewport") in page.attrs
    assert "@media print" in css and "break-inside: avoid" in css
    assert page.tags.count("svg") == len(charts.CHARTS)
    ids = [value for name, value in page.attrs if name == "id"]
    assert len(ids) == len(set(ids)), "two inline charts share an id"


def test_hostile_text_stays_text_in_html() -> None:
    raw = html("hostile")
    page = Page(raw)
    assert rs.HOSTILE_SCRIPT not in raw and "<b>the running" not in raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    assert rs.HOSTILE_SCRIPT in page.words  # shown to the reader as text
    assert "&amp;amp;" in raw  # a literal `&amp;` in the data reads `&amp;`, not `&`
    assert not any(v.lower().lstrip().startswith("javascript:") for _, v in page.attrs)
    assert rs.RTL in page.words and "<bdi>" in raw
    assert "x" * (charts.PNG_DPI * 3) not in raw and "1,998 characters in all" in page.words


def test_html_shows_the_snapshot_figures_and_verdicts() -> None:
    words = Page(html("full")).words
    for figure in (
        "87.5%",
        "32 min",
        "$0.0042",
        "22,460",
        "+3.1 pt",
        "-17.6%",
        "n = 340 / 310",
        "p < 0.0001",
    ):
        assert figure in words
    for verdict, badge in BADGES.items():
        assert f'<span class="badge {badge}">{verdict}</span>' in html("full")
    assert "2026-11-25 – 2026-12-01 against the 7 days before" in words
    assert (
        "Cost is partial: 12 runs of these days used models with no price when stored, counted at $0: "
        "llama-3-70b (40 steps, 12 runs)." in words
    )
    assert "Add them to prices in the settings." in words
    assert "the running server at 127.0.0.1:8080" in words and "2026-12-02 07:00 UTC" in words


def test_too_few_runs_read_not_enough_runs_never_a_direction() -> None:
    assert {r.verdict for r in view(rs.too_few()).snapshot} == {"no test", "not enough runs"}
    for text in (Page(html("too_few")).words, md("too_few")):
        assert "not enough runs" in text and "needs ≥ 30 runs per side (6 and 8)" in text
        assert "version 2 against version 1" in text
    assert "badge better" not in html("too_few") and "badge worse" not in html("too_few")
    assert "| **better** |" not in md("too_few") and "| **worse** |" not in md("too_few")


def test_a_report_with_no_runs_says_so() -> None:
    data = rs.no_runs()
    assert not any(charts.has_data(c.key, data.trend) for c in charts.CHARTS)
    page = Page(html("no_runs"))
    assert "No runs of quiet-workflow in these days" in page.words
    assert sum(1 for n, v in page.attrs if n == "aria-label" and charts.NO_DATA in v) == len(charts.CHARTS)
    assert "No runs of quiet-workflow in these days" in md("no_runs")
    assert "no comparison" in page.words and "Before" not in page.words


def _cells(line: str) -> list[str]:
    """A GFM table row's cells: split on pipes not escaped by a backslash."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


@pytest.mark.parametrize("sample", sorted(rs.SAMPLES))
def test_markdown_tables_keep_their_columns(sample: str) -> None:
    tables, width = 0, 0
    for line in md(sample).splitlines():
        if not line.startswith("|"):
            width = 0
            continue
        if not width:
            width, tables = len(_cells(line)), tables + 1
        assert len(_cells(line)) == width, line[:120]
    assert tables >= 1


def test_hostile_text_stays_text_in_markdown() -> None:
    text = md("hostile")
    # a raw `<` only where no tag, comment or autolink can start (`v<0>`, `p < 0.05`)
    assert not re.search(r"<[A-Za-z/!?]", text), "raw `<` before a letter would let HTML through"
    assert "v<0&gt;" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&amp;amp;" in text
    assert not re.search(r"(?<!\\)\]\(javascript", text) and not re.search(r"(?<!\\)\[click", text)
    assert re.findall(r"(?<!\\)`", text) == ["`", "`"]  # only the `prices` hint's code span
    assert "next line" in text and "\nnext line" not in text
    assert "| step\\|&lt;script&gt;" in text


def test_markdown_says_where_the_charts_are() -> None:
    text = md("full")
    assert "Markdown cannot carry charts" in text
    assert "| 2026-11-25 | 320 | 317 | 86.0% | 93.0% | 28 min | $0.0039 |" in text


@needs_poppler
def test_pdf_pages_render_and_carry_the_html_figures(tmp_path: Path) -> None:
    pdf = doc("full", "pdf")
    assert pdf.startswith(b"%PDF-")
    (tmp_path / "r.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(tmp_path / "r.pdf"), str(tmp_path / "p")], check=True)
    pages = sorted(tmp_path.glob("p-*.png"))
    assert 2 <= len(pages) <= 5, len(pages)
    assert all(p.stat().st_size > 2000 for p in pages)
    text, words = pdf_text("full"), Page(html("full")).words
    for row in view(rs.full()).snapshot:
        for figure in (row.label, row.current, row.before, row.change, row.relative, row.n, row.verdict):
            assert figure in words and figure in text, figure
    assert "Cost is partial: 12 runs of these days used models with no price" in text
    assert "page 1 of" in text and "invoice-triage: indicator report" in text
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in text and "draft_reply" in text


@needs_poppler
def test_hostile_text_stays_text_in_pdf() -> None:
    text = pdf_text("hostile")
    assert f"wf {rs.HOSTILE_SCRIPT} | x: indicator report" in text
    assert "<b>the running server at 127.0.0.1:8080</b>" in text
    assert "&amp;" in text and "1,998 characters in all" in text


@needs_poppler
def test_pdf_of_no_runs_renders_and_says_so() -> None:
    text = pdf_text("no_runs")
    assert "No runs of quiet-workflow in these days" in text and "No failed runs." in text


@pytest.mark.parametrize(("sample", "fmt"), [("full", "html"), ("full", "md"), ("no_runs", "pdf")])
def test_a_render_is_repeatable(sample: str, fmt: str) -> None:
    assert render(rs.SAMPLES[sample](), fmt) == doc(sample, fmt)


def test_charts_are_inline_ready_svg_and_print_sized_png() -> None:
    svgs = re.findall(r"<svg .*?</svg>", html("full"), re.S)
    assert len(svgs) == len(charts.CHARTS)
    for chart, svg in zip(charts.CHARTS, svgs, strict=True):
        assert "viewBox" in svg and f'id="{chart.key}-' in svg and " width=" not in svg.partition(">")[0]
        assert "<?xml" not in svg and "DOCTYPE" not in svg and "<metadata" not in svg and "http" not in svg
    image = charts.png(charts.draw("throughput", rs.full().trend[:1]), dpi=100)
    assert image.startswith(b"\x89PNG")
    assert int.from_bytes(image[16:20], "big") == round(charts.PNG_SIZE[0] * 100)  # IHDR width
    with pytest.raises(ValueError, match="rates, p95, cost, throughput"):
        charts.draw("pie", rs.full().trend)


def test_renders_in_threads_match_a_render_alone() -> None:
    """Reports are rendered in server threads: two at once must draw the same charts as one alone."""
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: render(rs.too_few(), "html"), range(2)))
    assert results == [doc("too_few", "html")] * 2
