"""Where accepted spans go: one column-oriented insert into the `spans` table."""

from __future__ import annotations

from analytics.warehouse import Warehouse
from receiver.batch import SPAN_COLUMNS, SpanBatch


class SpanStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self._wh = warehouse

    def insert(self, batch: SpanBatch) -> None:
        if len(batch):
            self._wh.insert_columns("spans", SPAN_COLUMNS, batch.columns)
