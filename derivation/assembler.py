"""Run assembly: rebuild runs and steps, in the warehouse, for traces that received spans.

The SQL lives in sql/ (views/assemble_steps.sql, views/assemble_runs.sql and the statements in
statements/ that insert from them; sql/README.md), and one cycle's statements in
derivation/rebuild.py; this loop only moves a watermark. The writer reports each committed
flush's `ingested_at` stamp; a cycle resolves every trace touched in (watermark, committed] to
its run, rebuilds those runs whole (every part, from all their facts) and then advances the
watermark, which is stored in `assembly_state` so a restart resumes where it stopped. Running a
range twice is harmless.

The invariant that makes this crash-safe: the watermark moves to a stamp only after every trace
with a `dirty_traces` row stamped at or below it has been rebuilt, and no row is ever stored
with a stamp at or below the watermark afterwards. In a running process the writer's commit
hook guarantees the second half (it reports just below its oldest flush in flight). Across a
restart the process has no such report, so it takes what is stored as committed: everything in
`dirty_traces` is stored, and the composition root starts the writer's stamps above it
(`stored_through_ms`). A kill at any point therefore leaves either work not yet done, which the
next start finds and does, or work done twice, which changes nothing.

Failures are classified once (warehouse.errors): a transient one is retried with
back-off, a permanent one (a broken view, a missing table) stops assembly and says so in the log,
/metrics and /healthz rather than failing the same way every second.

Runs whose end never comes: every `stale_check_interval_s` the loop sweeps unfinished runs that
had no span end within their workflow's limit; rebuilt, they become failed / abandoned.

Two rules keep older data stable:
  * a run that started more than its tenant's span retention ago, less an hour, is frozen
    (sql/views/queued_runs.sql): its first spans may already be expiring, so a late span must
    not rebuild it from what is left;
  * every (tenant, day) a cycle rewrites, before and after, is noted in `summary_dirty` for
    the summarizer (derivation/summarizer.py) that keeps the daily summary tier.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from derivation.rebuild import RunRebuild, StalePolicy, one_int
from derivation.stats import FAILED, OK, RETRYING, AssemblyHealth, AssemblyStats
from derivation.summarizer import Summarizer
from warehouse import Warehouse, WarehouseError, is_transient
from warehouse.outbox import Outbox
from warehouse.retention import TierDays

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AssemblyConfig:
    interval_s: float = 1.0
    window_ms: int = 5_000  # most ingest time assembled in one cycle
    window_traces: int = 20_000  # most traces resolved in one cycle (unless one ms holds more)
    spans_days: TierDays = field(default_factory=lambda: TierDays(30))
    steps_days: TierDays = field(default_factory=lambda: TierDays(90))
    runs_days: TierDays = field(default_factory=lambda: TierDays(90))
    summaries_days: TierDays = field(default_factory=lambda: TierDays(400))
    summary_interval_s: float = 10.0
    max_backoff_s: float = 30.0  # longest pause between retries of a transient failure
    run_keys: tuple[str, ...] = ()  # further span attributes whose value is a run id (spec 4.3)
    stale: StalePolicy = field(default_factory=StalePolicy)
    stale_check_interval_s: float = 60.0
    max_parts_per_run: int = 1000  # a trace beyond it is a run of its own (spec 4.3)


class RunAssembler:
    def __init__(self, warehouse: Warehouse, config: AssemblyConfig, outbox: Outbox | None = None) -> None:
        self._wh = warehouse
        self._config = config
        self.stats = AssemblyStats()
        self._watermark = one_int(
            self._wh.rows("SELECT argMax(watermark_ms, updated_at) FROM assembly_state WHERE name = 'runs'")
        )
        # Everything stored is committed: a restart after a crash finds the flushes the dead
        # process acknowledged but never assembled.
        self.stored_through_ms = one_int(
            self._wh.rows("SELECT toUnixTimestamp64Milli(max(ingested_at)) FROM dirty_traces")
        )
        # New stamps must land above the watermark too, which can be above every stored stamp
        # (a flush that failed after taking its stamp; dirty rows gone by their TTL).
        self.stored_through_ms = self._committed = max(self._watermark, self.stored_through_ms)
        self._pending_from_ms = self._first_after(self._watermark)
        self._params = {
            **config.spans_days.params("spans"),
            **config.steps_days.params("steps"),
            **config.runs_days.params("runs"),
        }
        self._rebuild = RunRebuild(
            warehouse,
            self._params,
            list(config.run_keys),
            config.stale,
            floor_ms=self._watermark,
            max_parts=config.max_parts_per_run,
            outbox=outbox,
        )
        self._last_sweep = time.monotonic()
        self._summarizer = Summarizer(
            warehouse, config.runs_days, config.summaries_days, config.summary_interval_s
        )
        self._state = OK
        self._failures = 0
        self._last_error = ""
        self._cond = threading.Condition()
        self._cycle = threading.Lock()
        self._stopping = False
        self._stopped = threading.Event()  # cuts a pause short only on stop, not on every commit
        self._thread = threading.Thread(target=self._run, name="wrm-assembler", daemon=True)
        self.stats.behind.set_function(lambda: self.health().behind_s)

    def start(self) -> None:
        self._thread.start()

    def committed(self, stamp_ms: int) -> None:
        """Writer hook: rows stamped up to `stamp_ms` are stored."""
        with self._cond:
            if self._committed <= self._watermark < stamp_ms:
                self._pending_from_ms = stamp_ms  # it was caught up: this flush is the oldest pending
            self._committed = max(self._committed, stamp_ms)
            self._cond.notify()

    def health(self) -> AssemblyHealth:
        with self._cond:
            behind = 0.0
            if self._committed > self._watermark and self._pending_from_ms:
                behind = max(0.0, time.time() - self._pending_from_ms / 1000)
            return AssemblyHealth(self._state, behind, self._watermark, self._failures, self._last_error)

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
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(60)
        try:
            if self._state == FAILED:
                log.error("run assembly had stopped on a permanent error; the next start resumes it")
            else:
                self._assemble()
                self._summarize(force=True)
        except WarehouseError as exc:  # the next start resumes from the stored watermark
            log.error("final run assembly failed; it resumes at the next start: %s", exc)
        finally:
            self._wh.close()

    def sweep_stale(self) -> None:
        """Fail, as abandoned, the unfinished runs idle past their limit (spec 4.5), now."""
        with self._cycle:
            self._rebuild.sweep()
            self.stats.cycles.inc()
        self._last_sweep = time.monotonic()

    def _run(self) -> None:
        pause = 0.0
        while True:
            if pause > 0:
                self._stopped.wait(pause)
            with self._cond:
                # Idle, it still wakes once per summary interval, so days noted by the last
                # cycle are summarized and stale runs swept even when no more spans come.
                if self._committed <= self._watermark and not self._stopping:
                    self._cond.wait(self._idle_wait() or None)
                if self._stopping:
                    return
            try:
                self._assemble()
                if time.monotonic() - self._last_sweep >= self._config.stale_check_interval_s:
                    self.sweep_stale()
                self._summarize(force=False)
            except Exception as exc:  # classified once; a bug counts as permanent
                if not self._failed(exc):
                    return  # permanent: stop, and say so, rather than fail the same way forever
                pause = min(self._config.max_backoff_s, max(self._config.interval_s, 0.1) * 2**self._failures)
                continue
            with self._cond:
                self._state, self._failures, self._last_error = OK, 0, ""
            pause = self._config.interval_s

    def _idle_wait(self) -> float:
        until_sweep = self._config.stale_check_interval_s - (time.monotonic() - self._last_sweep)
        return max(0.05, min(self._config.summary_interval_s or until_sweep, until_sweep))

    def _failed(self, exc: Exception) -> bool:
        """Record a failed cycle; True when it is worth retrying."""
        transient = is_transient(exc)
        self.stats.failures.labels("transient" if transient else "permanent").inc()
        with self._cond:
            self._failures += 1
            # /healthz shows this: the class and code only; the log has the engine's message
            self._last_error = exc.summary() if isinstance(exc, WarehouseError) else type(exc).__name__
            self._state = RETRYING if transient else FAILED
            failures = self._failures
        if transient:
            log.warning("run assembly failed (attempt %d), will retry: %s", failures, exc)
        else:
            log.error(
                "run assembly stopped by a permanent error; runs stop updating until it is fixed and "
                "wrm serve restarted (ingest goes on, nothing acknowledged is lost): %s",
                exc,
                exc_info=not isinstance(exc, WarehouseError),
            )
        return transient

    def _assemble(self) -> None:
        """Catch up to the committed stamp a bounded window at a time, so memory stays flat,
        skipping stretches in which nothing arrived."""
        while True:
            with self._cycle:
                if self._rebuild.pending:  # runs a dead cycle queued
                    self._rebuild.rebuild_pending()
                with self._cond:
                    since, committed = self._watermark, self._committed
                if committed <= since:
                    return
                first = self._first_after(since)
                if first == 0 or first > committed:  # nothing arrived in (since, committed]
                    self._advance(committed)
                    return
                with self._cond:
                    self._pending_from_ms = first
                until = min(committed, first - 1 + self._config.window_ms, self._nth_after(since))
                self._rebuild.window(since, until)
                self.stats.cycles.inc()
                self.stats.lag.observe(max(0.0, time.time() - first / 1000))
                self._advance(until)

    def _summarize(self, *, force: bool) -> None:
        with self._cycle:
            if self._summarizer.refresh(self._rebuild.done_ms, force=force):
                self.stats.summary_refreshes.inc()

    def _nth_after(self, since: int) -> int:
        """The stamp of the `window_traces`-th trace stored after `since`: a window ends there at
        the latest, so one cycle resolves a bounded number of traces."""
        return one_int(
            self._wh.rows(
                "SELECT toUnixTimestamp64Milli(max(ingested_at)) FROM (SELECT ingested_at FROM dirty_traces "
                "WHERE ingested_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC') "
                "ORDER BY ingested_at LIMIT {n:UInt32})",
                {"since": since, "n": self._config.window_traces},
            )
        )

    def _first_after(self, since: int) -> int:
        """The stamp of the oldest flush stored after `since` (0: none)."""
        return one_int(
            self._wh.rows(
                "SELECT toUnixTimestamp64Milli(min(ingested_at)) FROM dirty_traces "
                "WHERE ingested_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC')",
                {"since": since},
            )
        )

    def _advance(self, watermark: int) -> None:
        self._wh.insert_columns("assembly_state", ["name", "watermark_ms"], [["runs"], [watermark]])
        with self._cond:
            self._watermark = watermark
