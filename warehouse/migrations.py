"""Apply `sql/NNN_name.sql` files in order, once each, recorded in `schema_migrations`."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from warehouse.client import Warehouse
from warehouse.errors import MigrationError, WarehouseError

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
_FILE_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = MergeTree ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def statements(self) -> list[str]:
        """Split on `;` at the end of a line; statements here never end a line inside a string."""
        body = "\n".join(line for line in self.text.splitlines() if not line.lstrip().startswith("--"))
        parts = re.split(r";[ \t]*(?:\n|$)", body)
        return [p.strip() for p in parts if p.strip()]


def discover(sql_dir: Path = SQL_DIR) -> list[Migration]:
    found: dict[int, Migration] = {}
    if not sql_dir.is_dir():
        raise MigrationError(f"migration directory {sql_dir} does not exist")
    for path in sorted(sql_dir.glob("*.sql")):
        m = _FILE_RE.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNN_lowercase_name.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} is also {found[version].path.name}")
        found[version] = Migration(version, m.group(2), path)
    return [found[v] for v in sorted(found)]


def applied(wh: Warehouse) -> dict[int, str]:
    wh.command(_LEDGER)
    return {int(v): str(c) for v, c in wh.rows("SELECT version, checksum FROM schema_migrations")}


def migrate(wh: Warehouse, sql_dir: Path = SQL_DIR) -> list[Migration]:
    """Apply pending migrations and return them; a second call applies nothing.

    Statements use `IF NOT EXISTS` so a migration interrupted half-way can be re-run.
    """
    done = applied(wh)
    ran: list[Migration] = []
    for mig in discover(sql_dir):
        if mig.version in done:
            if done[mig.version] != mig.checksum:
                log.warning("migration %03d_%s changed after it was applied", mig.version, mig.name)
            continue
        for stmt in mig.statements():
            try:
                wh.command(stmt)
            except WarehouseError as exc:
                raise MigrationError(f"{mig.path.name}: {exc}") from exc
        wh.insert_columns(
            "schema_migrations", ["version", "name", "checksum"], [[mig.version], [mig.name], [mig.checksum]]
        )
        log.info("applied migration %03d_%s", mig.version, mig.name)
        ran.append(mig)
    return ran
