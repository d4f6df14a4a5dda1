"""The one way into the warehouse: clickhouse-connect clients for the embedded engine or a server."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from warehouse.dsn import Dsn, parse_dsn
from warehouse.errors import WarehouseError, WarehouseLocked, WarehouseUnavailable, classify

log = logging.getLogger(__name__)

_DATABASE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

# Settings for the read-only client of WRM's own queries. readonly=2 refuses every write and DDL
# statement but still lets a caller pass per-query settings such as max_threads or output_format_*.
READONLY_SETTINGS: dict[str, Any] = {"readonly": 2}
MAX_READERS = 16


class Warehouse:
    """A process's handle on the warehouse.

    Holds two clients: `client` for writes and DDL, `reader` (readonly=2) for user-supplied SQL.
    They are separate handles so a long user query never queues behind, or ahead of, an insert.
    """

    def __init__(self, dsn: Dsn, database: str, client: Client, reader: Client) -> None:
        self.dsn = dsn
        self.database = database
        self.client = client
        self.reader = reader
        self._closed = False
        self._lock = threading.Lock()
        self._readers: dict[str, Client] = {database: reader}

    @classmethod
    def open(cls, dsn: str | Dsn, database: str = "wrm") -> Warehouse:
        """Connect, create the database if missing, and return the handle."""
        parsed = parse_dsn(dsn) if isinstance(dsn, str) else dsn
        if not _DATABASE_RE.match(database):
            raise WarehouseError(f"database name {database!r} is not a plain identifier")
        bootstrap = _connect(parsed, None, {})
        try:
            bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        except ClickHouseError as exc:
            raise classify(exc, f"cannot create database {database!r}") from exc
        finally:
            if not parsed.embedded:
                bootstrap.close()
        client = _connect(parsed, database, {})
        reader = _connect(parsed, database, READONLY_SETTINGS)
        if parsed.embedded:
            bootstrap.close()
        log.debug("warehouse open: %s database=%s", parsed.describe(), database)
        return cls(parsed, database, client, reader)

    def reader_for(self, database: str) -> Client:
        """A read-only client whose default database is `database` (created on first use)."""
        if not _DATABASE_RE.match(database):
            raise WarehouseError(f"Code: 81. DB::Exception: Database {database!r} is not a plain identifier")
        with self._lock:
            found = self._readers.get(database)
            if found is None:
                if len(self._readers) >= MAX_READERS:
                    raise WarehouseUnavailable(f"more than {MAX_READERS} databases queried; reuse one")
                found = self._readers[database] = _connect(self.dsn, database, READONLY_SETTINGS)
            return found

    def session(self, own_reader: bool = False) -> Warehouse:
        """Another handle on the same warehouse, for a thread that must not queue behind others
        (a chdb client serializes its calls): the writer threads and the run assembler. With
        `own_reader` its reads get their own client too (the /v1 API, /healthz, exports), so they
        never wait behind another caller's query; otherwise it shares this handle's reader."""
        reader = _connect(self.dsn, self.database, READONLY_SETTINGS) if own_reader else self.reader
        handle = Warehouse(self.dsn, self.database, _connect(self.dsn, self.database, {}), reader)
        if not own_reader:
            handle._readers = {}  # the reader stays the parent's: closing this handle leaves it open
        return handle

    def open_reader(self) -> Client:
        """A new read-only client the caller owns and closes: for a long read (an export) that
        must not hold a shared reader's handle while it runs."""
        return _connect(self.dsn, self.database, READONLY_SETTINGS)

    def sandboxed_reader(self, limits: Mapping[str, Any]) -> Client:
        """A client for SQL written by users. `limits` (max_execution_time, max_memory_usage, …)
        are set first, then readonly=1, after which the engine refuses any further setting change
        (SET, a SETTINGS clause, a URL setting), writes, DDL and table functions that reach outside
        the warehouse (file, url, s3, remote, …); the limits therefore stay for every query."""
        settings = {k: v for k, v in limits.items() if k != "readonly"}
        settings["readonly"] = 1  # last: once it is set, nothing after it could be
        return _connect(self.dsn, self.database, settings)

    def insert_file(self, table: str, data: bytes, fmt: str, settings: Mapping[str, str]) -> None:
        """Insert bytes already in ClickHouse format `fmt` (e.g. Protobuf): the engine parses them.

        The embedded engine reads them from a temporary file (`INSERT … FROM INFILE`); a server
        gets them as the request body.
        """
        clause = ", ".join(f"{k} = '{_quote(v)}'" for k, v in settings.items())
        try:
            if not self.dsn.embedded:
                self.client.raw_insert(table, insert_block=data, settings=dict(settings), fmt=fmt)
                return
            with tempfile.NamedTemporaryFile(prefix="wrm-", suffix=f".{fmt.lower()}", delete=False) as f:
                f.write(data)
            try:
                self.client.command(
                    f"INSERT INTO {table} FROM INFILE '{_quote(f.name)}' SETTINGS {clause} FORMAT {fmt}"
                )
            finally:
                os.unlink(f.name)
        except (ClickHouseError, OSError) as exc:
            raise classify(exc, f"insert into {table} failed") from exc

    def timezone(self) -> str:
        return str(self.client.command("SELECT timezone()"))

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        try:
            return self.client.command(sql, parameters=dict(parameters) if parameters else None)
        except (ClickHouseError, OSError) as exc:
            raise classify(exc) from exc

    def rows(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query with bound parameters and return its rows."""
        try:
            result = self.client.query(sql, parameters=dict(parameters) if parameters else None)
        except (ClickHouseError, OSError) as exc:
            raise classify(exc) from exc
        # clickhouse-connect declares rows as Sequence[Sequence[Any]], and builds each as a tuple
        # (a zip of the block's columns), with the chdb and the HTTP client alike.
        return cast("list[tuple[Any, ...]]", list(result.result_rows))

    def insert_columns(self, table: str, names: Sequence[str], columns: Sequence[Sequence[Any]]) -> None:
        """Insert column-oriented data: the fastest path clickhouse-connect offers from Python."""
        try:
            self.client.insert(table, list(columns), column_names=list(names), column_oriented=True)
        except (ClickHouseError, OSError) as exc:
            raise classify(exc, f"insert into {table} failed") from exc

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for c in (*self._readers.values(), self.client):
            try:
                c.close()
            except Exception:  # closing is best effort; the process is going away
                log.debug("closing client failed", exc_info=True)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _connect(dsn: Dsn, database: str | None, settings: dict[str, Any]) -> Client:
    try:
        if dsn.embedded:
            assert dsn.path is not None
            dsn.path.mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(
                interface="chdb", path=str(dsn.path), database=database, settings=settings
            )
        return clickhouse_connect.get_client(
            host=dsn.host,
            port=dsn.port,
            secure=dsn.secure,
            username=dsn.username,
            password=dsn.password,
            database=database or "default",
            settings=settings,
        )
    except Exception as exc:
        text = str(exc)
        if dsn.embedded and ("EmbeddedServer" in text or "different path" in text):
            raise WarehouseLocked(
                f"the embedded warehouse at {dsn.path} is open in another process "
                "(a running `wrm serve` owns it; query it through its HTTP port)"
            ) from exc
        raise WarehouseUnavailable(f"cannot connect to {dsn.describe()}: {text}") from exc
