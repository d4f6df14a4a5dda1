"""build(client, request) -> ReportData. (Being written.)"""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from analytics.reports.content import ReportData
from analytics.reports.request import ReportRequest


def build(client: Client, request: ReportRequest, *, source: str = "") -> ReportData:
    raise NotImplementedError(request.workflow)
