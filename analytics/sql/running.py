"""One user query from slot to last byte, as an ASGI response.

Every engine call runs on the query's slot thread, never on the event loop, so the rest of the
HTTP app keeps answering. The response waits for the first chunk before it sends a status, so an
error found early (a refusal, a limit) is a proper ClickHouse error response; an error after data
has been sent is appended to the body, as ClickHouse does. A client that goes away, a client that
stops reading, or a query past its time limit plus a grace gets its query killed; the slot is given
back only once the query's stream is closed on its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from clickhouse_connect.driver.binding import bind_query
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from analytics.sql.capacity import Slot, SqlCapacity
from analytics.sql.gate import STREAMED, formatted
from analytics.sql.protocol import CONTENT_TYPES, ProtocolError, SqlRequest, error_response
from analytics.sql.tenant_scope import TenantScope

CHUNK = 1 << 20
GRACE_S = 5.0  # beyond the engine's own time limit, for a client that reads too slowly
_CODE_RE = re.compile(r"Code: (\d+)")
_FORMAT_SQL = "SELECT formatQuery({q:String}) AS q FORMAT JSONEachRow"


def server_side_binds(text: str, binds: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `param_*` values to hand the driver, or None.

    clickhouse-connect binds values server-side (as ClickHouse's `param_*`) only when the text has
    `{name:Type}` placeholders; otherwise it formats them into the text itself with Python's `%`
    operator — after the gate has checked that text, so a value like `' || file('/etc/passwd')
    || '` would be spliced into SQL. So binds go only to text the driver binds server-side; other
    text runs without them (ClickHouse ignores unused parameters too). The driver's own
    `bind_query` makes the decision, so it cannot differ from what the driver then does."""
    if not binds:
        return None
    try:
        _, server_side = bind_query(text, dict(binds))
    except Exception:  # the driver could not even format it: never hand it the values
        return None
    return dict(binds) if server_side else None


class _Abandoned(Exception):
    """The client went away or the deadline passed: the query was killed."""


class _Query:
    """State of one query on its slot; its methods run on the slot's thread only."""

    def __init__(self, slot: Slot, capacity: SqlCapacity, sql: SqlRequest, scope: TenantScope | None) -> None:
        self.slot = slot
        self.capacity = capacity
        self.sql = sql
        self.scope = scope
        self.tag = capacity.new_tag()
        self.fmt = sql.default_format
        self.stream: Any = None

    def open(self) -> bytes:
        """Check the statement, start it, and return its first chunk. A tenant key's statement
        runs in its tenant's database, after the allow-list check on the same text and handle."""
        policy, client, scope = self.capacity.policy, self.slot.client, self.scope
        policy.check_settings(self.sql.settings)
        if scope is not None:
            self.capacity.tenants.ensure(scope.tenant)
        client.database = self.sql.database
        canonical = json.loads(client.raw_query(_FORMAT_SQL, parameters={"q": self.sql.query}))["q"]
        kind = policy.check_statement(canonical, tenant=scope is not None)
        if scope is not None:
            scope.check(canonical, kind, self._explain)
        text, self.fmt = formatted(canonical, self.sql.default_format)
        binds = server_side_binds(text, self.sql.binds)
        if kind in STREAMED:
            self.stream = client.raw_stream(self.tag + text, parameters=binds)
        else:  # chdb streams only SELECT; SHOW, DESCRIBE, … answer a few rows
            self.stream = io.BytesIO(client.raw_query(self.tag + text, parameters=binds))
        return bytes(self.stream.read(CHUNK))

    def read(self) -> bytes:
        return bytes(self.stream.read(CHUNK))

    def _explain(self, text: str) -> str:
        """An EXPLAIN of the statement, with its binds, tagged so that it can be killed too."""
        binds = server_side_binds(text, self.sql.binds)
        return bytes(self.slot.client.raw_query(self.tag + text, parameters=binds)).decode("utf-8", "replace")

    def close(self) -> None:
        """Close the stream (freeing the handle), then give the slot back."""
        try:
            if self.stream is not None:
                self.stream.close()
        except Exception:  # a killed or failed stream may complain on close; the handle is free
            pass
        finally:
            self.capacity.release_soon(self.slot)


class QueryResponse(Response):
    """Runs `sql` on a slot of `capacity` and streams its result; `scope`: a tenant key's."""

    def __init__(
        self, capacity: SqlCapacity, sql: SqlRequest, timezone: str, scope: TenantScope | None = None
    ) -> None:
        super().__init__()
        self.capacity = capacity
        self.sql = sql
        self.timezone = timezone
        self.scope = scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()
        listener = asyncio.ensure_future(_watch(receive, gone))
        try:
            await self._serve(scope, send, gone)
        finally:
            listener.cancel()

    async def _serve(self, scope: Scope, send: Send, gone: asyncio.Event) -> None:
        slot = await self.capacity.acquire(self.scope.tenant if self.scope is not None else "")
        if slot is None:
            limits = self.capacity.limits
            message = (
                f"Too many simultaneous queries: {limits.max_concurrent} running and "
                f"{limits.max_queued} waiting; retry later. (TOO_MANY_SIMULTANEOUS_QUERIES)"
            )
            await error_response(message, 202, {"Retry-After": "1"})(scope, _no_receive, send)
            return
        query = _Query(slot, self.capacity, self.sql, self.scope)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.capacity.limits.max_execution_s + GRACE_S
        try:
            try:
                chunk = await self._on_slot(query, query.open, gone, deadline)
            except _Abandoned:
                return
            except Exception as exc:
                await _failure(exc)(scope, _no_receive, send)
                return
            await send(
                {"type": "http.response.start", "status": 200, "headers": self._start_headers(query.fmt)}
            )
            while chunk:
                sent = asyncio.ensure_future(
                    send({"type": "http.response.body", "body": chunk, "more_body": True})
                )
                if not await _within(sent, gone, deadline - loop.time()):
                    self.capacity.kill(query.tag)
                    return
                try:
                    chunk = await self._on_slot(query, query.read, gone, deadline)
                except _Abandoned:
                    return
                except Exception as exc:  # after data: the error ends the body, as in ClickHouse
                    chunk = b""
                    await send(
                        {"type": "http.response.body", "body": _error_text(str(exc)), "more_body": True}
                    )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            with contextlib.suppress(RuntimeError):  # the server stopped and shut the slot's thread
                slot.executor.submit(query.close)

    async def _on_slot(
        self, query: _Query, fn: Callable[[], bytes], gone: asyncio.Event, deadline: float
    ) -> bytes:
        loop = asyncio.get_running_loop()
        result = loop.run_in_executor(query.slot.executor, fn)
        if await _within(result, gone, deadline - loop.time()):
            return result.result()
        self.capacity.kill(query.tag)
        raise _Abandoned

    def _start_headers(self, fmt: str) -> list[tuple[bytes, bytes]]:
        headers = {
            "content-type": CONTENT_TYPES.get(fmt, "application/octet-stream"),
            "x-clickhouse-format": fmt,
            "x-clickhouse-timezone": self.timezone,
            "x-clickhouse-query-id": self.sql.query_id,
            "x-clickhouse-server-display-name": "wrm",
            "x-clickhouse-summary": json.dumps({"read_rows": "0", "read_bytes": "0", "written_rows": "0"}),
        }
        return [(k.encode(), v.encode("latin-1", "replace")) for k, v in headers.items()]


async def _within(work: asyncio.Future[Any], gone: asyncio.Event, timeout: float) -> bool:
    """Wait for `work`; False when the client went away or `timeout` passed first."""
    watcher = asyncio.ensure_future(gone.wait())
    try:
        done, _ = await asyncio.wait(
            {work, watcher}, timeout=max(0.0, timeout), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        watcher.cancel()
    if work in done:
        return True
    if isinstance(work, asyncio.Task):  # a send to a stalled client; an engine call ends by KILL
        work.cancel()
    return False


async def _watch(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _failure(exc: Exception) -> Response:
    if isinstance(exc, ProtocolError):
        return error_response(str(exc), exc.code)
    text = str(exc)
    m = _CODE_RE.search(text)
    return error_response(text, int(m.group(1)) if m else 1002)


def _error_text(text: str) -> bytes:
    return ("\n" + (text[text.find("Code:") :] if "Code:" in text else text).rstrip() + "\n").encode()
