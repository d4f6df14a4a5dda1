"""render(data, format) -> the document's bytes. (Being written: the renderers.)"""

from __future__ import annotations

from analytics.reports.content import ReportData


def render(data: ReportData, fmt: str) -> bytes:
    raise NotImplementedError(fmt)
