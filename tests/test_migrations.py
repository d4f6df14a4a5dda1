"""Migrations apply in order once, are recorded, and refuse malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from warehouse import MigrationError, Warehouse, migrate
from warehouse.migrations import SQL_DIR, discover


def test_second_run_applies_nothing(warehouse: Warehouse) -> None:
    first = migrate(warehouse)
    assert [m.version for m in first] == [m.version for m in discover()]
    assert migrate(warehouse) == []
    rows = warehouse.rows("SELECT version, name FROM schema_migrations ORDER BY version")
    assert rows == [(m.version, m.name) for m in discover(SQL_DIR)]


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
