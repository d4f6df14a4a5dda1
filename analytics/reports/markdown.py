"""A report as GitHub-flavoured Markdown: the same content as the HTML, trends as a table by day.

Every string of the view is escaped by `text()`: whoever sends spans chooses workflow and step
names, versions, failure reasons and run ids, and none of them may end a table cell (`|`, a
newline), open a link (`[`…`](javascript:…)`), a code span or emphasis, or carry raw HTML (`<`,
`&`), which GitHub and most renderers would otherwise pass through.
"""

from __future__ import annotations

import re

from analytics import significance
from analytics.reports.render import PRICES_HINT, Table, View

_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")
# only where they could open a tag or an entity, so `p < 0.0001` still reads as itself
_HTML = re.compile(r"&(?=[A-Za-z#])|<(?=[A-Za-z/!?])|>")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
NO_CHARTS = (
    "Markdown cannot carry charts inside itself, so the trends are a table here; "
    "the HTML and PDF versions of this report draw them."
)


def text(value: str) -> str:
    """`value` as literal Markdown text on one line: markup characters escaped, HTML as entities."""
    value = _CONTROL.sub(" ", value).strip()
    value = _HTML.sub(lambda m: _ENTITIES[m.group()], value)
    return _SPECIAL.sub(r"\\\1", value)


def table(t: Table) -> list[str]:
    """A GFM table (numbers right-aligned), or its `empty` sentence in italics."""
    if not t.rows:
        return [f"_{text(t.empty)}_", ""]
    lines = [
        "| " + " | ".join(text(h) for h in t.headers) + " |",
        "|" + "|".join(" ---: " if num else " --- " for num in t.numeric) + "|",
    ]
    lines += ["| " + " | ".join(text(cell) for cell in row) + " |" for row in t.rows]
    return [*lines, ""]


def render(view: View) -> bytes:
    out = [f"# {text(view.workflow)}: indicator report", ""]
    out += [f"- **{name}:** {text(value)}" for name, value in view.meta]
    out.append("")
    if view.no_runs:
        out += [f"> **{text(view.no_runs)}**", ""]
    if view.unpriced:
        out += [f"> {text(view.unpriced)} {PRICES_HINT}", ""]

    out += ["## Effectiveness", ""]
    if view.snapshot:
        out += _snapshot(view)
    else:
        out += ["_No indicators._", ""]
    out += ["## Time to benefit", "", *table(view.benefits)]
    out += ["## Trends by day", "", NO_CHARTS, "", *table(view.trend)]
    out += ["## Top failure reasons", "", *table(view.failures)]
    out += ["## Retries by step", "", *table(view.retries)]
    if view.notes:
        out += ["## Notes", "", *(f"- {text(n)}" for n in view.notes), ""]
    out += [
        "---",
        "",
        f"_Every figure is read from WRM's indicator views; generated {text(view.generated)}._",
    ]
    out.append("")
    return "\n".join(out).encode("utf-8")


def _snapshot(view: View) -> list[str]:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    if view.compared:
        headers = ("Indicator", "Current", "Before", "Change", "Relative", "Sample", "Verdict", "Why")
        rows = tuple(
            (r.label, r.current, r.before, r.change, r.relative, r.n, r.verdict or "–", r.note)
            for r in view.snapshot
        )
        numeric = (False, True, True, True, True, True, False, False)
    else:
        headers, numeric = ("Indicator", "Current", "Sample"), (False, True, True)
        rows = tuple((r.label, r.current, r.n) for r in view.snapshot)
    lines = table(Table(headers, rows, numeric, ""))
    if view.compared:
        lines[2:] = [_bold_verdict(line) for line in lines[2:]]
        lines += [
            f"Sample: the runs (or days, or scored runs) behind each figure, current / before. "
            f"**better** or **worse** only when a significance test passed (p < {significance.ALPHA}) "
            "on enough runs.",
            "",
        ]
    return lines


def _bold_verdict(line: str) -> str:
    """The verdict cell (7th) in bold, so it stands out like the HTML's badge."""
    cells = re.split(r"(?<!\\)\|", line)
    if len(cells) > 8 and cells[7].strip() not in ("", "–"):
        cells[7] = f" **{cells[7].strip()}** "
    return "|".join(cells)
