"""What a user statement may do on the SQL port, checked before it runs.

The engine does most of it: user SQL runs on readonly=1 handles, which refuse writes, DDL, `SET`,
setting changes and most table functions. Measured with chdb 4.4, readonly=1 still allows some
things that reach outside the warehouse or disturb the server, so the gate refuses them too:
the scalar `file('/etc/passwd')`, `SELECT … INTO OUTFILE`, several statements in one request,
`KILL QUERY` (which would stop the server's own queries) and `SYSTEM STOP MERGES`.

The engine parses the statement (`formatQuery`, with the text as a bound parameter), which
refuses several statements in one, and returns it in canonical form: no comments, one quoting
style. The gate reads that form, and that form is what runs, so what is checked is what runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from analytics.sql.protocol import READONLY, ProtocolError
from analytics.sql.tenant_space import readable

# Statements that only read; the engine streams the results of the first two only.
STREAMED = frozenset({"SELECT", "WITH"})
_STATEMENTS = STREAMED | {"SHOW", "DESCRIBE", "EXPLAIN", "EXISTS"}
# Table functions that read only what the engine already holds or generates; every other one
# (file, url, s3, remote, mysql, executable, python, … and any a later engine adds) is refused.
SAFE_TABLE_FUNCTIONS = frozenset(
    {
        "numbers", "numbers_mt", "zeros", "zeros_mt", "primes", "generaterandom", "generateseries",
        "generate_series", "values", "view", "viewifpermitted", "viewexplain", "merge", "null", "loop",
        "format", "mergetreeindex", "mergetreeprojection", "mergetreeanalyzeindexes",
        "mergetreeanalyzeindexesuuid", "mergetreetextindex", "mergetreecodecblockcounts",
    }
)  # fmt: skip
# Scalar functions that reach outside: `file` reads any path the process can (chdb does not
# confine it to user_files_path), the ai* functions send data to a provider.
_OUTSIDE_FUNCTIONS_SQL = (
    "SELECT name FROM system.functions WHERE name = 'file' "
    "OR (lower(name) LIKE 'ai%' AND (description ILIKE '%LLM%' OR description ILIKE '%provider%'))"
)
_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)
    |(?P<str>'(?:[^'\\]|\\.|'')*')
    |(?P<qid>`(?:[^`\\]|\\.|``)*`|"(?:[^"\\]|\\.|"")*")
    |(?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    |(?P<num>[0-9][0-9A-Za-z_.]*)
    |(?P<param>\{[A-Za-z_][A-Za-z0-9_]*:[^{}']*\})
    |(?P<punct>[^\sA-Za-z0-9_'"`]+?)""",
    re.VERBOSE | re.DOTALL,
)
# Scalar functions that read a table or dictionary named in a string argument, or tell about the
# host and its disks (the warehouse path, the free space that all tenants' ingest fills): a
# tenant key's statement may not call them (its rows come only through its own views).
_BY_NAME_SQL = (
    "SELECT name FROM system.functions WHERE lower(name) LIKE 'dict%' OR lower(name) LIKE 'filesystem%' "
    "OR lower(name) IN ('joinget', 'joingetornull', 'hascolumnintable', 'getserversetting', "
    "'getmergetreesetting', 'getmacro', 'hostname', 'fqdn', 'serveruuid', 'uptime', 'getoskernelversion', "
    "'displayname', 'buildid', 'getclientoption')"
)
# Table functions a tenant key may call: generators only, and its own parameterized views.
TENANT_TABLE_FUNCTIONS = frozenset(
    {
        "numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries",
        "generaterandom", "values", "null", "format",
    }
)  # fmt: skip
ACCESS_DENIED = 497
_TRAILING_FORMAT_RE = re.compile(r"\nFORMAT\s+`?([A-Za-z][A-Za-z0-9]*)`?\s*$")  # formatQuery quotes `Null`
_SETTING_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Refused(ProtocolError):
    """The statement or a setting is not allowed on the SQL port."""


@dataclass(frozen=True)
class Policy:
    """Names the gate refuses and the settings every user handle has (for no-op URL settings)."""

    outside_functions: frozenset[str]
    handle_settings: dict[str, str]
    tenant_refused: frozenset[str] = frozenset()  # lower-case; refused for tenant keys only

    @classmethod
    def read(cls, reader: Any, sandboxed: Any, names: list[str]) -> Policy:
        """Built from the engine itself, so a table function added by a later engine is refused.
        `reader` lists functions and settings (the sandboxed handle's own result limit may be
        below their count); `sandboxed` says the values of `names`, the settings it changed."""
        rows = reader.query("SELECT name FROM system.table_functions").result_rows
        tables = {str(r[0]).lower() for r in rows}
        scalars = {str(r[0]).lower() for r in reader.query(_OUTSIDE_FUNCTIONS_SQL).result_rows}
        rows = reader.query("SELECT name, value FROM system.settings").result_rows
        settings = {str(r[0]): str(r[1]) for r in rows}
        changed = sandboxed.query(
            "SELECT name, value FROM system.settings WHERE name IN {names:Array(String)}",
            parameters={"names": names},
        ).result_rows
        settings.update({str(r[0]): str(r[1]) for r in changed})
        by_name = {str(r[0]).lower() for r in reader.query(_BY_NAME_SQL).result_rows}
        tenant_refused = frozenset(by_name | (tables - TENANT_TABLE_FUNCTIONS))
        return cls(frozenset((tables - SAFE_TABLE_FUNCTIONS) | scalars | {"file"}), settings, tenant_refused)

    def check_settings(self, settings: dict[str, str]) -> None:
        """URL or form settings pass only when they change nothing: the engine refuses any change
        in readonly=1, and a user must not lift the limits or read-only mode."""
        for name, value in settings.items():
            current = self.handle_settings.get(name)
            if current is None or not _SETTING_NAME_RE.match(name):
                raise Refused(f"Unknown setting '{name}'. (UNKNOWN_SETTING)", 115)
            if value != current:
                raise Refused(f"Cannot modify '{name}' setting in readonly mode. (READONLY)", READONLY)

    def check_statement(self, canonical: str, tenant: bool = False) -> str:
        """Refuse `canonical` (the engine's formatQuery output) unless it only reads the warehouse;
        return its first keyword (SELECT, WITH, SHOW, …). With `tenant`, also refuse functions
        that read a table, dictionary or other database by name (`tenant_refused`)."""
        tokens = _tokens(canonical)
        words = [(kind, text) for kind, text in tokens if text != "("]
        first = words[0][1].upper() if words and words[0][0] == "word" else ""
        if first not in _STATEMENTS:
            raise Refused(
                f"Cannot execute query in readonly mode: only {', '.join(sorted(_STATEMENTS))} "
                "statements run on this port. (READONLY)",
                READONLY,
            )
        for i, (kind, text) in enumerate(tokens):
            following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
            if kind == "word" and text.upper() == "INTO" and following.upper() == "OUTFILE":
                raise Refused(
                    "Cannot execute query in readonly mode: INTO OUTFILE writes a file. (READONLY)", READONLY
                )
            if kind in ("word", "qid") and following == "(":
                name = _unquote(text) if kind == "qid" else text
                if name.lower() in self.outside_functions:
                    raise Refused(
                        f"Cannot execute query in readonly mode: function {name}() reaches outside "
                        "the warehouse. (READONLY)",
                        READONLY,
                    )
                if tenant and name.lower() in self.tenant_refused:
                    what = f"function {name}() reads tables or dictionaries by name, or tells about the host"
                    raise Refused(f"Not enough privileges: {readable(what)}. (ACCESS_DENIED)", ACCESS_DENIED)
        return first


def formatted(canonical: str, default_format: str) -> tuple[str, str]:
    """The statement to run and its output format: the query's own FORMAT, else `default_format`."""
    m = _TRAILING_FORMAT_RE.search(canonical)
    if m:
        return canonical, m.group(1)
    return f"{canonical}\nFORMAT {default_format}", default_format


def without_format(canonical: str) -> str:
    """The statement without its trailing FORMAT clause (to analyse it, as EXPLAIN, unchanged)."""
    m = _TRAILING_FORMAT_RE.search(canonical)
    return canonical[: m.start()] if m else canonical


def tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) of each token of a formatted statement: word, str, qid, num, param, punct."""
    return _tokens(text)


def unquote(text: str) -> str:
    """A quoted identifier's name."""
    return _unquote(text)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None or m.end() == pos:
            raise Refused(f"cannot read the statement at position {pos}. (SYNTAX_ERROR)", 62)
        kind = m.lastgroup or ""
        if (
            kind == "punct"
            and m.group() in ("-", "/", "#")
            and text[m.end() : m.end() + 1] in ("-", "*", "!")
        ):
            raise Refused("comments are not expected in a formatted statement. (SYNTAX_ERROR)", 62)
        if kind != "ws":
            out.append((kind, m.group()))
        pos = m.end()
    return out


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body).replace(text[0] * 2, text[0])
