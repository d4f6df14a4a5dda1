"""Keep the daily summary tier (sql/005_summaries.sql) in step with runs, with
sql/statements/refresh_summaries.sql.

The assembler notes which (tenant, day) pairs each assembly window rewrote in `summary_dirty`,
stamped with the window's end. This recomputes those days from runs_store, at most once per
`interval_s` (a busy day is recomputed whole, so refreshing on every assembly would redo the
same work each second), and always when asked to catch up or stop. Its watermark is stored in
`assembly_state` under 'summaries', so noted days survive a restart.
"""

from __future__ import annotations

import time

from warehouse import Warehouse
from warehouse.retention import TierDays
from warehouse.sql_files import statement


class Summarizer:
    """Used from the assembler's thread only."""

    def __init__(self, warehouse: Warehouse, runs: TierDays, summaries: TierDays, interval_s: float) -> None:
        self._wh = warehouse
        self._params = {**runs.params("runs"), **summaries.params("keep")}
        self._interval = interval_s
        rows = self._wh.rows(
            "SELECT argMax(watermark_ms, updated_at) FROM assembly_state WHERE name = 'summaries'"
        )
        self._watermark = int(rows[0][0]) if rows and rows[0][0] else 0
        self._last = 0.0

    def refresh(self, assembled_through_ms: int, *, force: bool = False) -> bool:
        """Recompute the days noted up to the assembler's watermark, if due; True if it did.

        The days are recomputed before the watermark is stored, so a crash in between only
        recomputes them again."""
        if assembled_through_ms <= self._watermark:
            return False
        if not force and time.monotonic() - self._last < self._interval:
            return False
        self._wh.command(
            statement("refresh_summaries"),
            {**self._params, "since": self._watermark, "until": assembled_through_ms},
        )
        self._wh.insert_columns(
            "assembly_state", ["name", "watermark_ms"], [["summaries"], [assembled_through_ms]]
        )
        self._watermark = assembled_through_ms
        self._last = time.monotonic()
        return True
