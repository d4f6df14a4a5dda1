"""Where accepted spans go: one column-oriented insert into the `spans` table."""

from __future__ import annotations

from analytics.warehouse import Warehouse
from receiver.batch import SPAN_COLUMNS, SpanBatch

_COLUMNS = (*SPAN_COLUMNS, "ingested_at")


class SpanStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self._wh = warehouse

    def insert(self, batch: SpanBatch, ingested_at_ms: int) -> None:
        """Insert the batch with one arrival stamp (ms since the epoch) on every row."""
        if len(batch):
            self._wh.insert_columns("spans", _COLUMNS, [*batch.columns, [ingested_at_ms] * len(batch)])
