"""Bring a warehouse's schema up to date: functions, then migrations, then views (sql/README.md).

1. Every `sql/functions/NAME.sql` is applied (`CREATE OR REPLACE FUNCTION`). Functions come
   first because materialized views created by migrations call them. SQL functions are global
   to the engine, not to one database: every database on one engine shares the newest text.
   The engine expands a function into a view when the view is created, so views follow a
   changed function at the next migrate(); a materialized view needs a migration to follow it.
2. Each `sql/NNN_name.sql` not yet in `schema_migrations` is applied, in version order, and
   recorded with its checksum. Migrations hold tables and materialized views only, and never
   read a view (views do not exist yet on a new warehouse).
3. Every `sql/views/NAME.sql` is applied (`CREATE OR REPLACE VIEW`), each after the views it
   reads, so a view edited in its one file is in force after the next start or `wrm migrate`.

A view or function that is no longer wanted needs a migration that drops it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable

from warehouse.client import Warehouse
from warehouse.errors import MigrationError, WarehouseError
from warehouse.sql_files import Definition, definitions, split_statements, sql_root

log = logging.getLogger(__name__)

_FILE_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = MergeTree ORDER BY version
"""

# Checksums of migrations 003-007 as they were applied before their views and functions moved to
# sql/views/ and sql/functions/ (2026-12). A warehouse that applied these texts has the same
# tables as the current files create, so the ledger records the new checksum instead of warning.
_BEFORE_SQL_SPLIT = {
    3: "02cb1ea2f5fb8ef4",
    4: "1ef4e5d64dc58395",
    5: "5241d1dcb0db842b",
    6: "b45d800c5f721959",
    7: "d90fbf7e3d0ee69b",
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Traversable

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def statements(self) -> list[str]:
        return split_statements(self.text)


def discover(sql_dir: Traversable | None = None) -> list[Migration]:
    root = sql_dir if sql_dir is not None else sql_root()
    if not root.is_dir():
        raise MigrationError(f"migration directory {root} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted((p for p in root.iterdir() if p.is_file()), key=lambda p: p.name):
        if not path.name.endswith(".sql"):
            continue
        m = _FILE_RE.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNN_lowercase_name.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is also {found[version].path.name}")
        found[version] = Migration(version, m.group(2), path)
    return [found[v] for v in sorted(found)]


def applied(wh: Warehouse) -> dict[int, str]:
    """Applied versions and the checksum last recorded for each."""
    wh.command(_LEDGER)
    rows = wh.rows("SELECT version, argMax(checksum, applied_at) FROM schema_migrations GROUP BY version")
    return {int(v): str(c) for v, c in rows}


def migrate(wh: Warehouse, sql_dir: Traversable | None = None) -> list[Migration]:
    """Apply functions, pending migrations and views; return the migrations applied (a second
    call applies none, and re-applies the functions and views).

    Migration statements use `IF NOT EXISTS` so a migration interrupted half-way can be re-run.
    """
    root = sql_dir if sql_dir is not None else sql_root()
    _define(wh, definitions("functions", root))
    done = applied(wh)
    ran: list[Migration] = []
    for mig in discover(root):
        if mig.version in done:
            _check_unchanged(wh, mig, done[mig.version])
            continue
        for stmt in mig.statements():
            try:
                wh.command(stmt)
            except WarehouseError as exc:
                raise MigrationError(f"{mig.path.name}: {exc}") from exc
        _record(wh, mig)
        log.info("applied migration %03d_%s", mig.version, mig.name)
        ran.append(mig)
    _define(wh, definitions("views", root))
    return ran


def _define(wh: Warehouse, found: list[Definition]) -> None:
    for d in found:
        try:
            wh.command(d.sql)
        except WarehouseError as exc:
            raise MigrationError(f"{d.file}: {exc}") from exc
    if found:
        log.debug("applied %d %s: %s", len(found), found[0].kind, ", ".join(d.name for d in found))


def _check_unchanged(wh: Warehouse, mig: Migration, recorded: str) -> None:
    if recorded == mig.checksum:
        return
    if _BEFORE_SQL_SPLIT.get(mig.version) == recorded:
        _record(wh, mig)
        log.info(
            "migration %03d_%s: recorded its new checksum (its views and functions moved to "
            "sql/views/ and sql/functions/; its tables are unchanged)",
            mig.version,
            mig.name,
        )
        return
    log.warning(
        "migration %03d_%s changed after it was applied (checksum %s applied, %s now) and is not "
        "applied again: this warehouse keeps what the applied text created. Change a table with a "
        "new migration; views and functions live in sql/views/ and sql/functions/",
        mig.version,
        mig.name,
        recorded,
        mig.checksum,
    )


def _record(wh: Warehouse, mig: Migration) -> None:
    wh.insert_columns(
        "schema_migrations", ["version", "name", "checksum"], [[mig.version], [mig.name], [mig.checksum]]
    )
