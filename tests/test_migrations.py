"""migrate(): functions, then pending migrations once each, then views; recorded in
schema_migrations; malformed files refused; a changed migration reported or re-recorded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from warehouse import MigrationError, Warehouse, migrate
from warehouse.migrations import _BEFORE_SQL_SPLIT, discover
from warehouse.sql_files import definitions

MIGRATIONS = [
    (1, "spans"),
    (2, "span_facts"),
    (3, "runs_steps"),
    (4, "otlp_landing"),
    (5, "summaries"),
    (6, "indicators"),
    (7, "run_api"),
    (8, "derivation_backlog_ttl"),
    (9, "runs_by_run_id"),
    (10, "access_control"),
    (11, "ingest_key_tenant"),
    (12, "redaction"),
    (13, "webhooks_alerts"),
    (14, "price_rules"),
    (15, "reports"),
    (16, "run_api_speed"),
]


def _objects(wh: Warehouse) -> dict[str, str]:
    rows = wh.rows("SELECT name, engine FROM system.tables WHERE database = currentDatabase()")
    return {str(n): str(e) for n, e in rows}


def test_new_warehouse_gets_every_migration_view_and_function_once(warehouse: Warehouse) -> None:
    first = migrate(warehouse)
    assert [(m.version, m.name) for m in first] == MIGRATIONS
    ledger = warehouse.rows("SELECT version, name FROM schema_migrations ORDER BY version")
    assert ledger == MIGRATIONS
    objects = _objects(warehouse)
    views = [d.name for d in definitions("views")]
    assert {"runs", "steps", "assemble_runs", "effectiveness", "time_to_benefit"} <= set(views)
    assert {v: objects.get(v) for v in views} == dict.fromkeys(views, "View")
    assert objects["spans_from_otlp_mv"] == "MaterializedView"
    functions = [d.name for d in definitions("functions")]
    found = warehouse.rows(
        "SELECT name FROM system.functions WHERE origin = 'SQLUserDefined' AND name IN {names:Array(String)}",
        {"names": functions},
    )
    assert sorted(n for (n,) in found) == sorted(functions)

    assert migrate(warehouse) == []
    assert warehouse.rows("SELECT count() FROM schema_migrations") == [(len(MIGRATIONS),)]


def test_views_are_reapplied_by_every_migrate(warehouse: Warehouse) -> None:
    migrate(warehouse)
    warehouse.command("CREATE OR REPLACE VIEW runs AS SELECT 1 AS stale")
    warehouse.command("CREATE OR REPLACE FUNCTION wrm_ratio AS (a, b) -> 42")
    assert migrate(warehouse) == []
    columns = warehouse.rows(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'runs'"
    )
    assert ("run_id",) in columns and ("stale",) not in columns
    assert warehouse.rows("SELECT wrm_ratio(1, 4)") == [(0.25,)]


def test_bad_file_names_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "1_short.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="NNN_lowercase_name"):
        discover(tmp_path)
    (tmp_path / "1_short.sql").unlink()
    (tmp_path / "001_a.sql").write_text("SELECT 1")
    (tmp_path / "001_b.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="version 1"):
        discover(tmp_path)


def test_failing_statement_names_the_file(warehouse: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "001_ok.sql").write_text(
        "-- a comment; with a semicolon\nCREATE TABLE IF NOT EXISTS a (x Int8)\n"
        "ENGINE = MergeTree ORDER BY x;\nCREATE TABLE IF NOT EXISTS b (x Int8)\n"
        "ENGINE = MergeTree ORDER BY x;\n"
    )
    (tmp_path / "002_broken.sql").write_text("CREATE TABLE oops (;\n")
    with pytest.raises(MigrationError, match=r"002_broken\.sql"):
        migrate(warehouse, tmp_path)
    assert [v for (v,) in warehouse.rows("SELECT version FROM schema_migrations")] == [1]
    assert warehouse.rows(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name IN ('a','b')"
    ) == [(2,)]


def test_a_failing_view_names_its_file(warehouse: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "v.sql").write_text("CREATE OR REPLACE VIEW v AS SELECT x FROM no_such_table;\n")
    with pytest.raises(MigrationError, match=r"sql/views/v\.sql"):
        migrate(warehouse, tmp_path)


def test_order_functions_then_migrations_then_views(warehouse: Warehouse, tmp_path: Path) -> None:
    """A migration's materialized view calls a function; a view reads the migration's table."""
    (tmp_path / "functions").mkdir()
    (tmp_path / "views").mkdir()
    (tmp_path / "functions" / "zz_twice.sql").write_text(
        "CREATE OR REPLACE FUNCTION zz_twice AS (x) -> x * 2;\n"
    )
    (tmp_path / "001_t.sql").write_text(
        "CREATE TABLE IF NOT EXISTS src (x Int32) ENGINE = MergeTree ORDER BY x;\n"
        "CREATE TABLE IF NOT EXISTS dst (y Int32) ENGINE = MergeTree ORDER BY y;\n"
        "CREATE MATERIALIZED VIEW IF NOT EXISTS m TO dst AS SELECT zz_twice(x) AS y FROM src;\n"
    )
    (tmp_path / "views" / "doubled.sql").write_text("CREATE OR REPLACE VIEW doubled AS SELECT y FROM dst;\n")
    assert [m.version for m in migrate(warehouse, tmp_path)] == [1]
    warehouse.command("INSERT INTO src VALUES (21)")
    assert warehouse.rows("SELECT y FROM doubled") == [(42,)]


def test_migration_edited_before_the_sql_split_is_re_recorded(
    warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    migrate(warehouse)
    current = dict(warehouse.rows("SELECT version, checksum FROM schema_migrations"))
    # as a warehouse migrated before views moved out of 003-007 recorded them
    warehouse.insert_columns(
        "schema_migrations",
        ["version", "name", "checksum"],
        [
            list(_BEFORE_SQL_SPLIT),
            [dict(MIGRATIONS)[v] for v in _BEFORE_SQL_SPLIT],
            list(_BEFORE_SQL_SPLIT.values()),
        ],
    )
    with caplog.at_level(logging.INFO, logger="warehouse.migrations"):
        assert migrate(warehouse) == []
    assert "recorded its new checksum" in caplog.text
    assert "changed after it was applied" not in caplog.text
    latest = "SELECT version, argMax(checksum, applied_at) FROM schema_migrations GROUP BY version"
    assert dict(warehouse.rows(latest)) == current
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="warehouse.migrations"):
        migrate(warehouse)
    assert caplog.text == ""


def test_migration_changed_otherwise_is_reported_not_reapplied(
    warehouse: Warehouse, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "001_t.sql"
    path.write_text("CREATE TABLE IF NOT EXISTS t (x Int32) ENGINE = MergeTree ORDER BY x;\n")
    migrate(warehouse, tmp_path)
    path.write_text("CREATE TABLE IF NOT EXISTS t (x Int64) ENGINE = MergeTree ORDER BY x;\n")
    with caplog.at_level(logging.WARNING, logger="warehouse.migrations"):
        assert migrate(warehouse, tmp_path) == []
    assert "001_t changed after it was applied" in caplog.text
    assert "new migration" in caplog.text
    assert warehouse.rows("SELECT count() FROM schema_migrations") == [(1,)]
