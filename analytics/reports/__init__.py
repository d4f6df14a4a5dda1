"""Indicator reports: HTML, Markdown and PDF documents a stakeholder reads, built from the views.

    request.py   ReportRequest, Comparison: which workflow, days and comparison
    gather.py    build(client, request) -> ReportData, every figure read from the SQL views
    content.py   ReportData and its rows: what every renderer reads
    render.py    render(data, format) -> bytes (html.py, markdown.py, pdf.py, charts.py)
    schedule.py  ReportSchedule: one [[reports]] entry of the settings

Errors: RequestError (a period or comparison that cannot be read) is a ValueError; a
warehouse error passes through as clickhouse-connect raised it.
"""

from analytics.reports.content import ReportData
from analytics.reports.gather import build
from analytics.reports.render import render
from analytics.reports.request import FORMATS, Comparison, ReportRequest, RequestError

__all__ = ["FORMATS", "Comparison", "ReportData", "ReportRequest", "RequestError", "build", "render"]
