"""Run assembly: rebuild runs and steps, in the warehouse, for traces that received spans.

The SQL lives in sql/003_runs_steps.sql (views `assemble_steps`, `assemble_runs`); this loop
only moves a watermark. The writer reports each committed flush's `ingested_at` stamp; a cycle
assembles every trace touched in (watermark, committed] and then advances the watermark, which
is stored in `assembly_state` so a restart resumes where it stopped. Because each cycle
recomputes whole traces from all their facts, running a range twice is harmless.

Two rules keep older data stable:
  * a run that started more than its tenant's span retention ago, less an hour, is frozen: its
    first spans may already be expiring, so a late span must not rebuild it from what is left;
  * every (tenant, day) a cycle rewrites, before and after, is noted in `summary_dirty` for
    the summarizer (receiver/summarizer.py) that keeps the daily summary tier.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from analytics.warehouse import Warehouse, WarehouseError
from analytics.warehouse.retention import TierDays
from receiver.summarizer import Summarizer

log = logging.getLogger(__name__)

_WINDOW = (
    "SELECT tenant_id, trace_id FROM dirty_traces "
    "WHERE ingested_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC') "
    "AND ingested_at <= fromUnixTimestamp64Milli({until:Int64}, 'UTC')"
)
_FROZEN = (
    "SELECT tenant_id, trace_id FROM runs_store FINAL WHERE (tenant_id, trace_id) IN (" + _WINDOW + ") "
    "AND start_time < now64(9) - toIntervalDay(transform(toString(tenant_id), {spans_tenants:Array(String)}, "
    "{spans_days:Array(UInt16)}, {spans_default:UInt16})) + INTERVAL 1 HOUR"
)
# The views' own retention_days parameter predates per-tenant retention: it is passed 0 and
# the column is replaced with the tenant's days (redefining the views would copy sql/003).
_ASSEMBLE = (
    "INSERT INTO {table} SELECT * REPLACE (toUInt16(transform(toString(tenant_id), "
    "{{{tier}_tenants:Array(String)}}, {{{tier}_days:Array(UInt16)}}, {{{tier}_default:UInt16}})) "
    "AS retention_days) FROM {view}("
    "since = fromUnixTimestamp64Milli({{since:Int64}}, 'UTC'), "
    "until = fromUnixTimestamp64Milli({{until:Int64}}, 'UTC'), retention_days = 0) "
    "WHERE (tenant_id, trace_id) NOT IN (" + _FROZEN.replace("{", "{{").replace("}", "}}") + ")"
)
# Before a rebuild, hide each run's current row in the time-ordered list (sql/007): the rebuilt
# row may sit at another key when its start time moved, and its newer version wins otherwise.
_UNLIST = (
    "INSERT INTO runs_by_time SELECT * REPLACE (now64(6) AS assembled_at, toUInt8(1) AS is_deleted) "
    "FROM runs_listing WHERE (tenant_id, trace_id) IN (" + _WINDOW + ") "
    "AND (tenant_id, trace_id) NOT IN (" + _FROZEN + ")"
)
_NOTE_DAYS = (
    "INSERT INTO summary_dirty SELECT DISTINCT tenant_id, toDate(start_time), {until:Int64} "
    "FROM runs_store FINAL WHERE (tenant_id, trace_id) IN (" + _WINDOW + ")"
)


@dataclass(frozen=True)
class AssemblyConfig:
    interval_s: float = 1.0
    window_ms: int = 5_000  # most ingest time assembled in one INSERT … SELECT
    spans_days: TierDays = field(default_factory=lambda: TierDays(30))
    steps_days: TierDays = field(default_factory=lambda: TierDays(90))
    runs_days: TierDays = field(default_factory=lambda: TierDays(90))
    summaries_days: TierDays = field(default_factory=lambda: TierDays(400))
    summary_interval_s: float = 10.0


class RunAssembler:
    def __init__(self, warehouse: Warehouse, config: AssemblyConfig) -> None:
        self._wh = warehouse
        self._config = config
        rows = self._wh.rows(
            "SELECT argMax(watermark_ms, updated_at) FROM assembly_state WHERE name = 'runs'"
        )
        self._watermark = int(rows[0][0]) if rows else 0
        self._committed = self._watermark
        self._params = {
            **config.spans_days.params("spans"),
            **config.steps_days.params("steps"),
            **config.runs_days.params("runs"),
        }
        self._summarizer = Summarizer(
            warehouse, config.runs_days, config.summaries_days, config.summary_interval_s
        )
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
        """Assemble everything committed so far and refresh its summaries, now, in the caller's
        thread."""
        self._assemble()
        self._summarize(force=True)

    def stop(self) -> None:
        """Assemble what is committed, stop the thread and release the warehouse handle."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(60)
        try:
            self._assemble()
            self._summarize(force=True)
        except WarehouseError as exc:  # the next start resumes from the stored watermark
            log.error("final run assembly failed; it resumes at the next start: %s", exc)
        finally:
            self._wh.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                # Idle, it still wakes once per summary interval, so days noted by the last
                # cycle are summarized even when no more spans come.
                if self._committed <= self._watermark and not self._stopping:
                    self._cond.wait(self._config.summary_interval_s or None)
                if self._stopping:
                    return
            try:
                self._assemble()
                self._summarize(force=False)
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
                window = {**self._params, "since": since, "until": until}
                self._wh.command(_NOTE_DAYS, window)  # the days runs are on before this cycle
                for table, view, tier in (
                    ("steps_store", "assemble_steps", "steps"),
                    ("runs_store", "assemble_runs", "runs"),
                ):
                    if table == "runs_store":
                        self._wh.command(_UNLIST, window)
                    self._wh.command(_ASSEMBLE.format(table=table, view=view, tier=tier), window)
                self._wh.command(_NOTE_DAYS, window)  # and after it
                self._advance(until)

    def _summarize(self, *, force: bool) -> None:
        with self._cycle:
            with self._cond:
                through = self._watermark
            self._summarizer.refresh(through, force=force)

    def _advance(self, watermark: int) -> None:
        self._wh.insert_columns("assembly_state", ["name", "watermark_ms"], [["runs"], [watermark]])
        with self._cond:
            self._watermark = watermark
