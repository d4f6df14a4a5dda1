"""What a tenant key's statement may read, checked on the engine's own analysis before it runs.

A tenant's statement runs with its tenant's database of views (tenant_space) as the default
database, and may read only that database, a few harmless `system` tables and generator table
functions. Two checks, both on the same canonical text that then runs, on the same handle:

1. `EXPLAIN AST` (a parse, nothing read): every table named anywhere — FROM/JOIN, a subquery, the
   right side of IN, a table function — must be in the tenant's database (unqualified names are),
   or an allowed system table. This comes first because the engine's analysis is not read-only:
   measured with chdb 4.4, `EXPLAIN QUERY TREE` runs scalar subqueries and table-function
   arguments, so an error in it could carry another tenant's value (`CAST((SELECT name FROM
   wrm.spans) AS UInt8)` fails with "Cannot parse string '<name>'").
2. `EXPLAIN QUERY TREE`: every table (`TABLE … table_name: db.name`) and table function
   (`TABLE_FUNCTION … table_function_name: name`) of the resolved query is allowed.

Both fail closed: output that does not parse as expected refuses the statement. The dump of
`EXPLAIN AST` prints aliases as written, so an alias with a line break could add a line; the
tree is rebuilt from the indentation and every node's `(children N)` must match, so added lines
refuse the statement instead of hiding a table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from analytics.sql.gate import ACCESS_DENIED, TENANT_TABLE_FUNCTIONS, Refused, tokens, unquote, without_format
from analytics.sql.tenant_space import PARAMETERIZED, readable

# System tables a tenant key may read: constants and the engine's own catalogue of functions,
# formats and settings (clickhouse-connect reads system.settings as it connects). Nothing that
# lists databases, tables, columns, queries, parts, errors or disks.
SYSTEM_TABLES = frozenset(
    {
        "one", "numbers", "numbers_mt", "zeros", "zeros_mt", "settings", "functions", "table_functions",
        "data_type_families", "formats", "time_zones", "table_engines", "build_options", "collations",
        "aggregate_function_combinators", "keywords", "contributors",
    }
)  # fmt: skip
_IN_FUNCTIONS = frozenset(
    {"in", "notin", "globalin", "globalnotin", "nullin", "notnullin", "globalnullin", "globalnotnullin"}
)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CHILDREN_RE = re.compile(r" \(children (\d+)\)$")
# A node's name ends at a comma: modifiers (`, final: 1`, sampling) may follow it.
_TREE_NODE_RE = re.compile(
    r"(?:TABLE id: \d+(?:, alias: __table\d+)?, table_name: (?P<table>[^\s,]+)"
    r"|TABLE_FUNCTION id: \d+(?:, alias: __table\d+)?, table_function_name: (?P<function>[^\s,]+))(?:, .*)?"
)
_TREE_NAMES = ("table_name:", "table_function_name:", "TABLE id", "TABLE_FUNCTION id")
_SHOW_TABLES_TAIL = frozenset({"NOT", "LIKE", "ILIKE", "LIMIT"})

Explain = Callable[[str], str]  # runs an EXPLAIN statement on the query's own handle, returns its text


def denied(what: str) -> Refused:
    return Refused(f"Not enough privileges: {readable(what)}. (ACCESS_DENIED)", ACCESS_DENIED)


@dataclass
class _Node:
    kind: str
    name: str
    declared: int
    children: list[_Node] = field(default_factory=list)


@dataclass(frozen=True)
class TenantScope:
    """A tenant key's view of the warehouse: `database` is its tenant's database of views."""

    tenant: str
    database: str

    # --- names --------------------------------------------------------------------------------

    def table_allowed(self, name: str) -> bool:
        """A resolved `db.table` name (from the query tree) the tenant may read."""
        db, dot, table = name.partition(".")
        if not dot or not _PLAIN.fullmatch(table):
            return False
        return db == self.database or (db == "system" and table in SYSTEM_TABLES)

    def named_table_allowed(self, name: str) -> bool:
        """A table as written in the statement: unqualified names are the tenant's database (or a
        CTE, itself checked); qualified ones must be allowed."""
        return "." not in name or self.table_allowed(name)

    def function_allowed(self, name: str) -> bool:
        """A table function: a generator, or one of the tenant's parameterized views."""
        db, dot, fn = name.rpartition(".")
        if not dot:
            return name.lower() in TENANT_TABLE_FUNCTIONS or name in PARAMETERIZED
        return db == self.database and fn in PARAMETERIZED

    # --- statements ---------------------------------------------------------------------------

    def check(self, canonical: str, kind: str, explain: Explain) -> None:
        """Refuse (Code 497) `canonical`, of kind `kind` (its first keyword), unless it reads only
        what the tenant may; `explain` answers EXPLAIN statements on the query's handle."""
        body = without_format(canonical)
        if kind in ("SELECT", "WITH"):
            self.check_select(body, explain)
        elif kind == "DESCRIBE":
            self.check_select("SELECT * FROM " + _after(body, ("DESCRIBE", "TABLE")), explain)
        elif kind == "EXISTS":
            self._check_exists(body)
        elif kind == "SHOW":
            self._check_show(body)
        else:
            raise denied(f"{kind} statements are not available to it")

    def check_select(self, body: str, explain: Explain) -> None:
        self._check_ast(explain("EXPLAIN AST " + body))
        for line in explain("EXPLAIN QUERY TREE " + body).split("\n"):
            text = line.strip()
            m = _TREE_NODE_RE.fullmatch(text)
            if m is None:
                if any(name in text for name in _TREE_NAMES):
                    raise denied("its analysis could not be verified (a name with unusual characters?)")
            elif m.group("table") is not None and not self.table_allowed(m.group("table")):
                raise denied(f"it may not read {m.group('table')}")
            elif m.group("function") is not None and not self.function_allowed(m.group("function")):
                raise denied(f"it may not call the table function {m.group('function')}()")

    def _check_ast(self, dump: str) -> None:
        root = _tree(dump)
        stack: list[tuple[_Node, _Node | None]] = [(root, None)]
        while stack:
            node, parent = stack.pop()
            stack.extend((child, node) for child in node.children)
            if node.kind == "TableIdentifier" and not self.named_table_allowed(node.name):
                raise denied(f"it may not read {node.name}")
            if node.kind != "Function":
                continue
            if parent is not None and parent.kind == "TableExpression":
                if not self.function_allowed(node.name):
                    raise denied(f"it may not call the table function {node.name}()")
            elif "." in node.name:
                raise denied(f"it may not call {node.name}()")
            args = node.children[0].children if node.children else []
            in_table = node.name.lower() in _IN_FUNCTIONS and len(args) > 1 and args[1].kind == "Identifier"
            if in_table and not self.named_table_allowed(args[1].name):  # `x IN db.table` reads it
                raise denied(f"it may not read {args[1].name}")

    def _check_exists(self, body: str) -> None:
        words = tokens(body)[1:]
        if words and words[0][1].upper() in ("TABLE", "VIEW"):
            words = words[1:]
        shape = ["." if t == "." else "name" if k in ("word", "qid") else k for k, t in words]
        if shape not in (["name"], ["name", ".", "name"]):
            raise denied("EXISTS with a tenant key takes one table name: EXISTS [TABLE] name")
        parts = [unquote(t) if k == "qid" else t for k, t in words if t != "."]
        if not self.named_table_allowed(".".join(parts)):
            raise denied(f"it may not read {'.'.join(parts)}")

    def _check_show(self, body: str) -> None:
        words = tokens(body)
        head = [t.upper() for _, t in words[:2]]
        tail_ok = all(
            (k == "word" and t.upper() in _SHOW_TABLES_TAIL) or k in ("str", "num") for k, t in words[2:]
        )
        if head != ["SHOW", "TABLES"] or not tail_ok:
            raise denied("of SHOW statements it may run only SHOW TABLES [[NOT] LIKE|ILIKE '…'] [LIMIT n]")


def _after(body: str, keywords: tuple[str, ...]) -> str:
    """`body` after its leading `keywords` (the engine's canonical spelling)."""
    rest = body.lstrip()
    for word in keywords:
        if rest[: len(word)].upper() == word and not rest[len(word) : len(word) + 1].isalnum():
            rest = rest[len(word) :].lstrip()
    return rest


def _tree(dump: str) -> _Node:
    """The `EXPLAIN AST` dump as a tree, from its indentation; refuses unless every node has the
    children it declares and there is one root (see the module docstring)."""
    root: _Node | None = None
    stack: list[_Node] = []
    for line in dump.split("\n"):
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        text = line[depth:]
        m = _CHILDREN_RE.search(text)
        if m:
            text = text[: m.start()]
        kind, _, rest = text.partition(" ")
        node = _Node(kind, rest.split(" (alias ", 1)[0], int(m.group(1)) if m else 0)
        if depth == 0:
            if root is not None:
                raise denied("the statement's parse could not be verified")
            root = node
        elif depth > len(stack):
            raise denied("the statement's parse could not be verified")
        else:
            stack[depth - 1].children.append(node)
        del stack[depth:]
        stack.append(node)
    if root is None:
        raise denied("the statement's parse could not be verified")
    pending = [root]
    while pending:
        node = pending.pop()
        if len(node.children) != node.declared:
            raise denied("the statement's parse could not be verified (an alias with a line break?)")
        pending.extend(node.children)
    return root
