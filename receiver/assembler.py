"""Run assembly: rebuild runs and steps, in the warehouse, for traces that received spans.

The SQL lives in sql/003_runs_steps.sql (views `assemble_steps`, `assemble_runs`); this loop
only moves a watermark. The writer reports each committed flush's `ingested_at` stamp; a cycle
assembles every trace touched in (watermark, committed] and then advances the watermark, which
is stored in `assembly_state` so a restart resumes where it stopped. Because each cycle
recomputes whole traces from all their facts, running a range twice is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from analytics.warehouse import Warehouse, WarehouseError

log = logging.getLogger(__name__)

_STATE_DDL = """
CREATE TABLE IF NOT EXISTS assembly_state (
    name String, watermark_ms Int64, updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(updated_at) ORDER BY name
"""
_ASSEMBLE = (
    "INSERT INTO {table} SELECT * FROM {view}("
    "since = fromUnixTimestamp64Milli({{since:Int64}}, 'UTC'), "
    "until = fromUnixTimestamp64Milli({{until:Int64}}, 'UTC'), "
    "retention_days = {{days:UInt16}})"
)


@dataclass(frozen=True)
class AssemblyConfig:
    interval_s: float = 1.0
    window_ms: int = 5_000  # most ingest time assembled in one INSERT … SELECT
    steps_retention_days: int = 90
    runs_retention_days: int = 90


class RunAssembler:
    def __init__(self, warehouse: Warehouse, config: AssemblyConfig) -> None:
        self._wh = warehouse
        self._config = config
        self._wh.command(_STATE_DDL)
        rows = self._wh.rows(
            "SELECT argMax(watermark_ms, updated_at) FROM assembly_state WHERE name = 'runs'"
        )
        self._watermark = int(rows[0][0]) if rows else 0
        self._committed = self._watermark
        self._cond = threading.Condition()
        self._cycle = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="wrm-assembler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def committed(self, stamp_ms: int) -> None:
        """Writer hook: rows stamped up to `stamp_ms` are stored."""
        with self._cond:
            self._committed = max(self._committed, stamp_ms)
            self._cond.notify()

    def catch_up(self) -> None:
        """Assemble everything committed so far, now, in the caller's thread."""
        self._assemble()

    def stop(self) -> None:
        """Assemble what is committed, stop the thread and release the warehouse handle."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(60)
        try:
            self._assemble()
        except WarehouseError as exc:  # the next start resumes from the stored watermark
            log.error("final run assembly failed; it resumes at the next start: %s", exc)
        finally:
            self._wh.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._committed <= self._watermark and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
            try:
                self._assemble()
            except WarehouseError as exc:  # retried next cycle: the watermark did not move
                log.warning("run assembly failed, will retry: %s", exc)
            time.sleep(self._config.interval_s)

    def _assemble(self) -> None:
        """Catch up to the committed stamp a bounded window at a time, so memory stays flat,
        skipping stretches in which nothing arrived."""
        while True:
            with self._cycle:
                with self._cond:
                    since, committed = self._watermark, self._committed
                if committed <= since:
                    return
                rows = self._wh.rows(
                    "SELECT toUnixTimestamp64Milli(min(ingested_at)) FROM dirty_traces "
                    "WHERE ingested_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC')",
                    {"since": since},
                )
                first = int(rows[0][0]) if rows and rows[0][0] else 0
                if first == 0 or first > committed:  # nothing arrived in (since, committed]
                    self._advance(committed)
                    return
                until = min(committed, first - 1 + self._config.window_ms)
                for table, view, days in (
                    ("steps_store", "assemble_steps", self._config.steps_retention_days),
                    ("runs_store", "assemble_runs", self._config.runs_retention_days),
                ):
                    self._wh.command(
                        _ASSEMBLE.format(table=table, view=view),
                        {"since": since, "until": until, "days": days},
                    )
                self._advance(until)

    def _advance(self, watermark: int) -> None:
        self._wh.insert_columns("assembly_state", ["name", "watermark_ms"], [["runs"], [watermark]])
        with self._cond:
            self._watermark = watermark
