"""The run list after sql/016 (runs_by_time's projection by duration, issue 18): a warehouse
with runs migrates and lists the same runs, newest first and longest first, each once with its
current version, as FINAL over runs_by_time gives them, whatever versions and hiding rows the
assembler's writes leave behind."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from analytics.runs.listing import RunFilter, list_runs
from warehouse import Warehouse, migrate
from warehouse.sql_files import sql_root

T = "speed"
BASE_NS = (int(time.time()) - 3600) * 10**9
_RUN = """
INSERT INTO runs_store (tenant_id, run_id, trace_id, trace_ids, workflow_name, workflow_version, environment,
    status, start_time, end_time, duration_ns, step_count, failure_reason, retention_days, assembled_at,
    is_deleted)
SELECT {t:String}, {r:String}, {r:String}, [{r:String}], {wf:String}, 'v1', 'production', {status:String},
    fromUnixTimestamp64Nano({base:Int64} - {age:Int64} * 1000000000, 'UTC'),
    if({dur:Int64} < 0, NULL, now64(9)),
    if({dur:Int64} < 0, NULL, toUInt64({dur:Int64})), 3, '', 30, now64(6), {deleted:UInt8}
"""
# what statements/unlist_runs.sql writes before a run is assembled again: its current row, hidden
_UNLIST = (
    "INSERT INTO runs_by_time SELECT * REPLACE (now64(6) AS assembled_at, toUInt8(1) AS is_deleted) "
    "FROM runs_listing WHERE tenant_id = {t:String} AND run_id = {r:String}"
)


def _run(wh: Warehouse, run: str, age: int, dur: int, status: str = "completed", **kw: object) -> None:
    params = {
        "t": T,
        "r": run,
        "wf": "triage",
        "status": status,
        "age": age,
        "dur": dur,
        "deleted": 0,
        "base": BASE_NS,
    }
    wh.command(_RUN, {**params, **kw})


def _runs(wh: Warehouse) -> None:
    """Runs with the versions the assembler leaves: rebuilt with a new duration, a new start, a new
    status without a hiding row (abandon_frozen_runs), deleted (drop_empty_runs), still running."""
    for i in range(8):
        _run(wh, f"plain-{i}", age=100 + i, dur=(i % 3 + 1) * 10**9)
    _run(wh, "longer", age=50, dur=2 * 10**9)
    wh.command(_UNLIST, {"t": T, "r": "longer"})
    _run(wh, "longer", age=50, dur=90 * 10**9)
    _run(wh, "shorter", age=60, dur=80 * 10**9)
    wh.command(_UNLIST, {"t": T, "r": "shorter"})
    _run(wh, "shorter", age=60, dur=10**6)
    _run(wh, "moved", age=70, dur=5 * 10**9)
    wh.command(_UNLIST, {"t": T, "r": "moved"})
    _run(wh, "moved", age=10, dur=5 * 10**9)
    _run(wh, "abandoned", age=30, dur=7 * 10**9, status="running")
    _run(wh, "abandoned", age=30, dur=7 * 10**9, status="failed")
    _run(wh, "gone", age=20, dur=60 * 10**9)
    _run(wh, "gone", age=20, dur=60 * 10**9, deleted=1)
    _run(wh, "live", age=5, dur=-1, status="running")
    _run(wh, "other-workflow", age=15, dur=70 * 10**9, wf="refund")


def _expected(wh: Warehouse, order: str, where: str = "1") -> list[tuple[str, str]]:
    return [
        (str(r), str(s))
        for r, s in wh.rows(
            "SELECT run_id, status FROM runs_by_time FINAL WHERE tenant_id = {t:String} AND is_deleted = 0 "
            f"AND {where} ORDER BY {order}",
            {"t": T},
        )
    ]


def _listed(wh: Warehouse, sort: str, flt: RunFilter, limit: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    cursor = None
    while True:
        page = list_runs(wh.reader, T, flt, limit=limit, cursor=cursor, sort=sort)  # type: ignore[arg-type]
        out += [(r.run_id, r.status) for r in page.runs]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


_BY_START = "start_time DESC, run_id DESC"
_BY_DURATION = "ifNull(duration_ns, 0) DESC, run_id DESC"


def _check(wh: Warehouse) -> None:
    for sort, order in (("start", _BY_START), ("duration", _BY_DURATION)):
        expected = _expected(wh, order)
        assert len(expected) == 14 and len(set(expected)) == 14
        for limit in (1, 3, 50):
            assert _listed(wh, sort, RunFilter(), limit) == expected
        assert _listed(wh, sort, RunFilter(workflow="triage"), 2) == _expected(
            wh, order, "workflow_name = 'triage'"
        )
        assert _listed(wh, sort, RunFilter(statuses=("running",)), 2) == [("live", "running")]
        assert _listed(wh, sort, RunFilter(min_duration_ms=50_000), 2) == _expected(
            wh, order, "duration_ns >= 50000000000"
        )


def test_a_warehouse_with_runs_migrates_and_lists_the_same_runs(warehouse: Warehouse, tmp_path: Path) -> None:
    before = tmp_path / "sql"
    shutil.copytree(str(sql_root()), before)
    (before / "016_run_api_speed.sql").unlink()
    for later in before.glob("01[7-9]_*.sql"):
        later.unlink()
    assert migrate(warehouse, before)[-1].name == "reports"
    _runs(warehouse)
    old = {sort: _listed(warehouse, sort, RunFilter(), 50) for sort in ("start", "duration")}

    assert [m.name for m in migrate(warehouse)][:1] == ["run_api_speed"]
    # the projection is built for the rows already there by a mutation, in the background
    deadline = time.monotonic() + 30
    while warehouse.rows(
        "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND NOT is_done"
    ) != [(0,)]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    parts = warehouse.rows(
        "SELECT sum(rows) FROM system.projection_parts WHERE database = currentDatabase() "
        "AND table = 'runs_by_time' AND name = 'by_duration' AND active"
    )
    assert parts == [(warehouse.rows("SELECT count() FROM runs_by_time")[0][0],)]
    assert {sort: _listed(warehouse, sort, RunFilter(), 50) for sort in old} == old
    _check(warehouse)
    # the assembler's next writes reach the projection too
    warehouse.command(_UNLIST, {"t": T, "r": "plain-0"})
    _run(warehouse, "plain-0", age=100, dur=95 * 10**9)
    _check(warehouse)
    assert _listed(warehouse, "duration", RunFilter(), 1)[0] == ("plain-0", "completed")
