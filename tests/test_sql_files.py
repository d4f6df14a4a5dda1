"""The SQL files: one object or statement each, applied in dependency order, loaded by name with
bound parameters only; views and functions live only in their own files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from warehouse import MigrationError, Warehouse, migrate
from warehouse.migrations import discover
from warehouse.sql_files import Kind, definitions, sql_root, statement

ROOT = Path(__file__).resolve().parents[1] / "sql"
STATEMENTS = sorted(p.stem for p in (ROOT / "statements").glob("*.sql"))


def test_sql_is_read_from_the_installed_package() -> None:
    assert Path(str(sql_root())).resolve() == ROOT.resolve()


@pytest.mark.parametrize("kind", ["functions", "views"])
def test_each_definition_comes_after_what_it_uses(kind: Kind) -> None:
    order = definitions(kind)
    assert sorted(d.name for d in order) == sorted(p.stem for p in (ROOT / kind).glob("*.sql"))
    names = {d.name for d in order}
    seen: set[str] = set()
    for d in order:
        assert d.references(names) <= seen, d.file
        seen.add(d.name)
    position = {d.name: i for i, d in enumerate(order)}
    if kind == "views":
        assert position["priced_span_facts"] < position["assemble_steps"]
        assert position["assembly_window"] < position["trace_keys"]
        assert (
            position["cycle_parts"] < position["assemble_steps"]
            and position["cycle_parts"] < position["assemble_runs"]
        )
        assert position["effectiveness_window"] < position["effectiveness"]
        assert position["comparison_sides"] < position["version_comparison"]
    else:
        assert position["wrm_json_value"] < position["wrm_text"] < position["wrm_map"]
        assert position["wrm_cut"] < position["wrm_cut_map"]


def test_a_cycle_is_refused_naming_the_files(tmp_path: Path) -> None:
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "a.sql").write_text("CREATE OR REPLACE VIEW a AS SELECT * FROM b;\n")
    (tmp_path / "views" / "b.sql").write_text("CREATE OR REPLACE VIEW b AS SELECT * FROM a;\n")
    (tmp_path / "views" / "c.sql").write_text("CREATE OR REPLACE VIEW c AS SELECT 1;\n")
    with pytest.raises(MigrationError, match=r"cycle: sql/views/a\.sql, sql/views/b\.sql$"):
        definitions("views", tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "CREATE OR REPLACE VIEW other AS SELECT 1;\n",  # names another view than its file
        "CREATE VIEW IF NOT EXISTS v AS SELECT 1;\n",  # not re-appliable
        "CREATE OR REPLACE VIEW v AS SELECT 1;\nCREATE OR REPLACE VIEW w AS SELECT 2;\n",
    ],
)
def test_a_view_file_holds_one_create_or_replace_of_its_name(tmp_path: Path, text: str) -> None:
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "v.sql").write_text(text)
    with pytest.raises(MigrationError, match=r"sql/views/v\.sql"):
        definitions("views", tmp_path)


def test_migrations_hold_no_plain_view_or_function() -> None:
    for mig in discover():
        for stmt in mig.statements():
            assert not re.match(r"CREATE (OR REPLACE )?(VIEW|FUNCTION)\b", stmt), (mig.path.name, stmt[:60])


@pytest.mark.parametrize("name", STATEMENTS)
def test_statements_have_only_bound_parameters(name: str) -> None:
    sql = statement(name)
    assert statement(name) is sql  # read once
    braces = re.findall(r"\{[^}]*\}", sql)
    assert braces, "a statement with no parameters would not need a file"
    for brace in braces:
        assert re.fullmatch(r"\{[a-z_]+:[A-Za-z0-9(), ]+\}", brace), brace
    assert "{{" not in sql and "retention_days = 0" not in sql


def test_statement_names_are_checked() -> None:
    assert {
        "assemble_steps",
        "assemble_runs",
        "unlist_runs",
        "note_summary_days",
        "refresh_summaries",
    } <= set(STATEMENTS)
    with pytest.raises(MigrationError, match="not a statement name"):
        statement("../views/runs")
    with pytest.raises(MigrationError, match="no statement"):
        statement("no_such_statement")


def test_assembly_views_have_no_retention_parameter(warehouse: Warehouse) -> None:
    """Retention is the statements' business (per tenant); the views only derive rows. (The engine
    stores a view with its SQL functions expanded, so the run-span functions are not visible.)"""
    migrate(warehouse)
    for view in ("assemble_steps", "assemble_runs"):
        (create,) = warehouse.rows(
            "SELECT create_table_query FROM system.tables "
            "WHERE database = currentDatabase() AND name = {v:String}",
            {"v": view},
        )[0]
        assert "argMinIf(span_id" in create
        assert "retention_days" not in create
