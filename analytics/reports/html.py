"""A report as one self-contained HTML page: inline CSS and inline SVG charts, nothing fetched.

Jinja2 with autoescape on, so every string of the view (workflow, versions, failure reasons, run
ids: all chosen by whoever sends spans) is text, never markup. Only the charts are marked safe:
charts.py draws them from numbers and fixed titles, and strips their references.
"""

from __future__ import annotations

import jinja2
from markupsafe import Markup

from analytics import significance
from analytics.reports import charts
from analytics.reports.render import View

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("analytics.reports", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render(view: View) -> bytes:
    drawn = [
        (c.title, c.description if charts.has_data(c.key, view.trend_points) else charts.NO_DATA, Markup(svg))
        for c, svg in charts.svgs(view.trend_points)
    ]
    page = _ENV.get_template("report.html.j2").render(v=view, charts=drawn, alpha=significance.ALPHA)
    return page.encode("utf-8")
