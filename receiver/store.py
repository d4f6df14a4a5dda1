"""Where accepted requests go: one insert of framed envelopes into `otlp_landing`, whose
materialized view writes the span rows (sql/004_otlp_landing.sql)."""

from __future__ import annotations

from analytics.warehouse import Warehouse
from receiver.envelope import FORMAT_SCHEMA


class SpanStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self._wh = warehouse

    def insert(self, frames: bytes) -> None:
        if frames:
            self._wh.insert_file("otlp_landing", frames, "Protobuf", {"format_schema": FORMAT_SCHEMA})
