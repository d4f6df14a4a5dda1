"""Upgrading a warehouse assembled under the trace-keyed run model (migrations 001-008, the SQL as
released: tests/data/sql_at_008.tar.gz, `git archive bbf6235 sql`) to run ids (sql/009): the
refund that the old model split into two runs with one run id becomes one run with both parts and
its usage counted once; a run whose spans have expired is kept as it was."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

from tests.conftest import start_server
from warehouse import Warehouse, migrate
from warehouse.retention import TierDays

OLD_SQL = Path(__file__).parent / "data" / "sql_at_008.tar.gz"
# two traces of one refund, both with wrm.run.id = order-u; the root of each carries the total of
# its LLM child, which the old model added on top
_SPANS = """
INSERT INTO spans (tenant_id, service_name, trace_id, span_id, parent_span_id, name, start_time, end_time,
                   duration_ns, status_code, attributes, retention_days)
SELECT 'up', 'svc', trace, span, parent, name, toDateTime64({base:Int64} + s, 9, 'UTC'),
       toDateTime64({base:Int64} + e, 9, 'UTC'), toUInt64((e - s) * 1000000000), 'OK', attrs, 30
FROM values('trace String, span String, parent String, name String, s Int64, e Int64,
              attrs Map(String, String)',
    ('aa01', 'r1', '', 'refund', -3600, -3590,
     map('wrm.run.id', 'order-u', 'wrm.workflow.name', 'refund', 'gen_ai.usage.input_tokens', '100')),
    ('aa01', 'c1', 'r1', 'chat', -3599, -3598,
     map('gen_ai.operation.name', 'chat', 'gen_ai.usage.input_tokens', '100')),
    ('aa01', 'm1', 'r1', 'ask', -3591, -3591, map('wrm.hitl.state', 'requested')),
    ('bb02', 'r2', '', 'refund', -1800, -1790,
     map('wrm.run.id', 'order-u', 'wrm.workflow.name', 'refund', 'gen_ai.usage.input_tokens', '50')),
    ('bb02', 'd2', 'r2', 'approve', -1800, -1799,
     map('wrm.hitl.decision', 'approved', 'wrm.step.type', 'human')),
    ('bb02', 'c2', 'r2', 'chat', -1798, -1797,
     map('gen_ai.operation.name', 'chat', 'gen_ai.usage.input_tokens', '50')))
"""
_OLD_CYCLE = ("note_summary_days", "assemble_steps", "unlist_runs", "assemble_runs", "note_summary_days")


def _old_sql(tmp_path: Path) -> Path:
    with tarfile.open(OLD_SQL) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "sql"


def test_runs_assembled_per_trace_are_rebuilt_by_run_id(warehouse: Warehouse, tmp_path: Path) -> None:
    old = _old_sql(tmp_path)
    assert [m.version for m in migrate(warehouse, old)] == list(range(1, 9))
    warehouse.command(_SPANS, {"base": int(time.time())})
    params = {
        "since": 0,
        "until": 2**62,
        **TierDays(30).params("spans"),
        **TierDays(90).params("steps"),
        **TierDays(90).params("runs"),
    }
    for name in _OLD_CYCLE:
        warehouse.command((old / "statements" / f"{name}.sql").read_text(), params)
    # a run whose spans are gone: only its row is left
    warehouse.command(
        "INSERT INTO runs_store (tenant_id, trace_id, run_id, workflow_name, status, start_time, "
        "retention_days, assembled_at) "
        "VALUES ('up', 'cc03', 'old-run', 'refund', 'completed', now64(9) - 86400 * 40, 90, now64(6))"
    )
    before = warehouse.rows("SELECT run_id, input_tokens FROM runs WHERE tenant_id = 'up' ORDER BY trace_id")
    assert before == [("order-u", 200), ("order-u", 100), ("old-run", 0)]  # the bug: split, counted twice

    assert [m.name for m in migrate(warehouse)] == [
        "runs_by_run_id",
        "access_control",
        "ingest_key_tenant",
        "redaction",
        "webhooks_alerts",
        "price_rules",
        "reports",
        "run_api_speed",
    ]
    server = start_server(warehouse)
    try:
        assert server.assembler is not None
        server.assembler.catch_up()
        runs = warehouse.rows(
            "SELECT run_id, trace_ids, status, input_tokens, human_wait_ms FROM runs WHERE tenant_id = 'up' "
            "ORDER BY run_id"
        )
        assert runs == [
            ("old-run", ["cc03"], "completed", 0, 0),
            (
                "order-u",
                ["aa01", "bb02"],
                "completed",
                150,
                1_792_000,
            ),  # asked at -3591 s, decided at -1799 s
        ]
        listed = warehouse.rows(
            "SELECT run_id FROM runs_by_time FINAL WHERE tenant_id = 'up' ORDER BY run_id"
        )
        assert listed == [("old-run",), ("order-u",)]
        assert warehouse.rows("SELECT count() FROM steps WHERE tenant_id = 'up' AND run_id = 'order-u'") == [
            (3,)
        ]
    finally:
        server.stop()
