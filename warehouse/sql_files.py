"""The SQL shipped with WRM, found wherever wrm is installed.

The repository's `sql/` directory is installed as the package `wrm_sql` (pyproject.toml maps it),
so it is read through importlib.resources, never relative to a checkout:

    sql/NNN_name.sql          migrations: tables and materialized views, applied once each, in order
    sql/functions/NAME.sql    one `CREATE OR REPLACE FUNCTION NAME`, re-applied by every migrate()
    sql/views/NAME.sql        one `CREATE OR REPLACE VIEW NAME`, re-applied by every migrate()
    sql/statements/NAME.sql   one statement each, with bound `{name:Type}` parameters only, run by
                              the derivation jobs through `statement(NAME)`
    sql/schemas/NAME.proto    Protobuf schemas the engine reads inserts with (`schema_path`)

Within functions/ and views/ the order is derived from the files: a view is applied after every
view it reads (`FROM name` or `JOIN name`), a function after every function it calls (`name(`),
ties by name, and a cycle is an error naming the files.
"""

from __future__ import annotations

import atexit
import contextlib
import heapq
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Literal

from warehouse.errors import MigrationError

PACKAGE = "wrm_sql"
Kind = Literal["functions", "views"]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_CREATE_RE = {
    "functions": re.compile(r"^CREATE OR REPLACE FUNCTION (\w+) AS\b"),
    "views": re.compile(r"^CREATE OR REPLACE VIEW (\w+) AS\b"),
}
_STRING_RE = re.compile(r"'(?:[^'\\]|\\.)*'")
_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def sql_root() -> Traversable:
    """The installed `sql/` directory."""
    return files(PACKAGE)


def split_statements(text: str) -> list[str]:
    """The statements of a file: whole-line `--` comments dropped, split on `;` at the end of a
    line (statements here never end a line inside a string)."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    parts = re.split(r";[ \t]*(?:\n|$)", body)
    return [p.strip() for p in parts if p.strip()]


@cache
def statement(name: str) -> str:
    """The one statement of sql/statements/NAME.sql, read once per process. Callers pass values
    as bound parameters; nothing is ever formatted into it."""
    if not _NAME_RE.match(name):
        raise MigrationError(f"{name!r} is not a statement name")
    file = sql_root() / "statements" / f"{name}.sql"
    if not file.is_file():
        raise MigrationError(f"no statement sql/statements/{name}.sql")
    found = split_statements(file.read_text(encoding="utf-8"))
    if len(found) != 1:
        raise MigrationError(f"sql/statements/{name}.sql holds {len(found)} statements, not one")
    return found[0]


@cache
def schema_path(name: str) -> Path:
    """A filesystem path to sql/schemas/NAME (the engine's `format_schema` needs one); extracted
    to a temporary file, for the life of the process, when the package is not on disk."""
    file = sql_root() / "schemas" / name
    if not file.is_file():
        raise MigrationError(f"no schema sql/schemas/{name}")
    return Path(_extracted.enter_context(as_file(file)))


@dataclass(frozen=True)
class Definition:
    """One function or view file: its object's name and its CREATE OR REPLACE statement."""

    kind: Kind
    name: str
    sql: str

    @property
    def file(self) -> str:
        return f"sql/{self.kind}/{self.name}.sql"

    def references(self, names: set[str]) -> set[str]:
        """The other names of `names` this definition uses."""
        code = _STRING_RE.sub("''", self.sql)
        if self.kind == "functions":
            used = set(re.findall(r"\b(\w+)\s*\(", code))
        else:
            used = set(re.findall(r"\b(?:FROM|JOIN)\s+(\w+)", code, flags=re.IGNORECASE))
        return (used & names) - {self.name}


def definitions(kind: Kind, root: Traversable | None = None) -> list[Definition]:
    """The files of sql/KIND/ in the order they are applied: each after those it uses."""
    folder = (root if root is not None else sql_root()) / kind
    if not folder.is_dir():
        return []
    found: dict[str, Definition] = {}
    for file in folder.iterdir():
        if not file.name.endswith(".sql"):
            continue
        name = file.name.removesuffix(".sql")
        statements = split_statements(file.read_text(encoding="utf-8"))
        match = _CREATE_RE[kind].match(statements[0]) if len(statements) == 1 else None
        if match is None or match.group(1) != name:
            what = "FUNCTION" if kind == "functions" else "VIEW"
            raise MigrationError(
                f"sql/{kind}/{file.name}: holds one statement, CREATE OR REPLACE {what} {name} AS …"
            )
        found[name] = Definition(kind, name, statements[0])
    return _dependency_order(found)


def _dependency_order(found: dict[str, Definition]) -> list[Definition]:
    names = set(found)
    needs = {name: d.references(names) for name, d in found.items()}
    users: dict[str, list[str]] = {name: [] for name in names}
    for name, used in needs.items():
        for dep in used:
            users[dep].append(name)
    waiting = {name: len(used) for name, used in needs.items()}
    ready = [name for name, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order: list[Definition] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(found[name])
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    if len(order) < len(found):
        stuck = sorted(found[n].file for n, w in waiting.items() if w > 0)
        raise MigrationError(f"these files use each other in a cycle: {', '.join(stuck)}")
    return order
