"""One assembly cycle's statements: resolve traces to runs, queue the runs, rebuild them.

A run is keyed by its run id and may span several traces (spec 4.3). A cycle over an ingest
window (since, until] therefore goes in two halves:

1. **Resolve.** Queue every run the window's traces were part of (queue_window_runs), resolve
   each trace's run (resolve_traces: its own key, else the run of the trace its run span links
   to, else its trace id) and carry changes along links, one hop per round (relinked_traces,
   resolve_links), then queue the runs the traces are part of now (queue_resolved_runs).
2. **Rebuild** every run queued after the queue mark and not frozen: steps, the run list's hiding
   rows, runs, deletion of runs left without a part, the summary days before and after; then
   move the queue mark.

Every queue row is stored before the trace resolutions it follows from, and the mark moves only
after the rebuild, so a cycle killed at any point leaves queued runs that the next cycle
rebuilds (`pending`). A stale sweep (`sweep`) queues unfinished runs idle past their limit and
runs the second half alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from warehouse import Warehouse
from warehouse.outbox import Outbox
from warehouse.sql_files import statement

# Link hops followed in one cycle; a chain of resumed parts longer than this (rare: each hop is a
# pause) is followed on by the next cycle, from the links mark.
MAX_LINK_HOPS = 60
_ROUNDS = 64  # versions per cycle stamp in trace_runs.resolved: stamp * 64 + round


@dataclass(frozen=True)
class StalePolicy:
    """When an unfinished run counts as abandoned (spec 4.5): no span for `after_s` (per
    workflow), or for `wait_s` while it waits for a person."""

    after_s: int = 24 * 3600
    after_by_workflow: Mapping[str, int] = field(default_factory=dict)
    wait_s: int = 7 * 24 * 3600
    wait_by_workflow: Mapping[str, int] = field(default_factory=dict)

    def params(self, now_ms: int) -> dict[str, object]:
        return {
            "now_ms": now_ms,
            "stale_workflows": list(self.after_by_workflow),
            "stale_seconds": list(self.after_by_workflow.values()),
            "stale_default": self.after_s,
            "wait_workflows": list(self.wait_by_workflow),
            "wait_seconds": list(self.wait_by_workflow.values()),
            "wait_default": self.wait_s,
        }


class RunRebuild:
    """The statements of one cycle, with the queue mark they move. Not thread-safe: the
    assembler runs one cycle at a time."""

    def __init__(
        self,
        warehouse: Warehouse,
        retention: Mapping[str, object],
        run_keys: list[str],
        stale: StalePolicy,
        floor_ms: int = 0,
        max_parts: int = 1000,
        outbox: Outbox | None = None,
    ) -> None:
        self._wh = warehouse
        self._outbox = outbox
        self._retention = dict(retention)
        self._run_keys = list(run_keys)
        self._max_parts = max_parts
        self.stale = stale
        self.done_ms = one_int(
            warehouse.rows(
                "SELECT argMax(watermark_ms, updated_at) FROM assembly_state WHERE name = 'run_queue'"
            )
        )
        queued = one_int(warehouse.rows("SELECT max(queued_ms) FROM run_queue"))
        # trace_runs versions below this have had their changes carried along links (none stored
        # yet: a new or just upgraded warehouse, whose resolutions all come from one migration)
        stored = warehouse.rows(
            "SELECT argMax(watermark_ms, updated_at), count() FROM assembly_state WHERE name = 'links'"
        )
        self.links_from = (
            one_int(stored)
            if stored and stored[0][1]
            else one_int(warehouse.rows("SELECT max(resolved) + 1 FROM trace_runs"))
        )
        self._last_stamp = max(self.done_ms, queued, floor_ms)
        self.pending = queued > self.done_ms  # a cycle died after queueing: rebuild at once

    def window(self, since: int, until: int) -> int:
        """Resolve the traces of the ingest window (since, until] and rebuild the runs they touch
        (and any still queued). Returns the cycle's stamp."""
        stamp = self._stamp(until)
        base = stamp * _ROUNDS
        window = {"since": since, "until": until}
        self._wh.command(statement("queue_window_runs"), {**window, "queued_ms": stamp})
        self._wh.command(
            statement("resolve_traces"),
            {
                **window,
                **self._retention,
                "run_keys": self._run_keys,
                "resolved": base,
                "max_parts": self._max_parts,
            },
        )
        # Follow links from every resolution not yet followed: this cycle's, and any a dead or
        # capped cycle left (links_from moves only once nothing is left to follow).
        follow = {"from": min(self.links_from, base)}
        for hop in range(1, MAX_LINK_HOPS + 1):
            pending = self._wh.rows("SELECT count() FROM relinked_traces(from = {from:UInt64})", follow)
            if not one_int(pending):
                self._wh.insert_columns(
                    "assembly_state", ["name", "watermark_ms"], [["links"], [base + _ROUNDS]]
                )
                self.links_from = base + _ROUNDS
                break
            self._wh.command(statement("queue_relinked_runs"), {**follow, "queued_ms": stamp})
            self._wh.command(statement("resolve_links"), {**follow, "resolved": base + hop})
        self._wh.command(statement("queue_resolved_runs"), {**follow, "queued_ms": stamp})
        self._rebuild(stamp)
        return stamp

    def sweep(self) -> int:
        """Queue the unfinished runs idle past their limit and rebuild them (they become
        abandoned). Returns the cycle's stamp."""
        stamp = self._stamp(0)
        stale = {"queued_ms": stamp, **self._retention, **self.stale.params(int(time.time() * 1000))}
        self._wh.command(statement("queue_stale_runs"), stale)
        self._rebuild(stamp, frozen_stale=stale)
        return stamp

    def rebuild_pending(self) -> int:
        """Rebuild what a dead cycle queued. Returns the cycle's stamp."""
        stamp = self._stamp(0)
        self._rebuild(stamp)
        return stamp

    def _rebuild(self, stamp: int, frozen_stale: Mapping[str, object] | None = None) -> None:
        queued = {"since": self.done_ms, "until": stamp, "stamp": stamp, **self._retention}
        notes = {"since": self.done_ms, "until": stamp, "noted_ms": stamp}
        self._wh.command(statement("collect_runs"), queued)
        self._wh.command(statement("collect_parts"), queued)
        self._wh.command(statement("note_summary_days"), notes)  # the days runs were on
        self._wh.command(statement("assemble_steps"), queued)
        self._wh.command(statement("unlist_runs"), queued)
        self._wh.command(statement("assemble_runs"), {**queued, **self.stale.params(int(time.time() * 1000))})
        self._wh.command(statement("drop_empty_runs"), queued)
        if frozen_stale is not None:  # stale runs that cannot be rebuilt: their rows are marked
            self._wh.command(statement("abandon_frozen_runs"), frozen_stale)
        self._wh.command(statement("note_summary_days"), notes)  # and the days they are on
        if self._outbox is not None:  # before the mark moves: a cycle killed here emits on re-run
            self._outbox.emit(statement("emit_run_events"), {"stamp": stamp})
        self._wh.insert_columns("assembly_state", ["name", "watermark_ms"], [["run_queue"], [stamp]])
        self.done_ms = stamp
        self.pending = False

    def _stamp(self, at_least: int) -> int:
        """A cycle stamp (ms) above every stamp used before, and at least `at_least`."""
        self._last_stamp = max(self._last_stamp + 1, int(time.time() * 1000), at_least)
        return self._last_stamp


def one_int(rows: list[tuple[object, ...]]) -> int:
    """A single integer from a one-row answer; 0 for none."""
    value = rows[0][0] if rows else None
    return int(value) if isinstance(value, (int, float)) else 0
