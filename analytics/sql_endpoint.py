"""Read-only SQL over the ClickHouse HTTP protocol, so ClickHouse clients and BI tools can query
the warehouse this process owns (the embedded engine allows one process per data directory).

Speaks the subset clients use: the query in `?query=` and/or the body (plain, or multipart form fields),
`database`, `default_format`, `param_NAME` bound parameters, other URL parameters as settings,
`X-ClickHouse-*` response headers, and errors as `Code: N. DB::Exception: …` bodies with the
`X-ClickHouse-Exception-Code` header. Every statement runs on a readonly=2 client: reads and
settings pass, writes and DDL fail with code 164 (READONLY).
"""

from __future__ import annotations

import json
import re
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from analytics.warehouse import Warehouse, WarehouseError

# URL parameters that steer the HTTP exchange rather than the query.
_TRANSPORT = frozenset(
    {
        "query", "database", "default_format", "query_id", "session_id", "session_timeout",
        "session_check", "compress", "decompress", "user", "password", "quota_key", "buffer_size",
        "wait_end_of_query", "enable_http_compression", "client_protocol_version", "role",
        "send_progress_in_http_headers", "http_headers_progress_interval_ms", "readonly",
        "cancel_http_readonly_queries_on_client_close", "http_zlib_compression_level",
    }
)  # fmt: skip
_FORMAT_RE = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9]*)\s*;?\s*$", re.IGNORECASE)
_INSERT_RE = re.compile(r"^\s*INSERT\b", re.IGNORECASE)
_CODE_RE = re.compile(r"Code: (\d+)")
_STATUS_BY_CODE = {62: 400, 60: 404, 81: 404, 164: 403, 497: 403, 46: 400, 47: 400, 53: 400, 36: 400}
_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}


class _Verbatim:
    """A `param_*` value already in ClickHouse's escaped text form. clickhouse-connect formats
    unknown types with str(), so this reaches the engine byte for byte, never re-escaped."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def _error(message: str, code: int) -> Response:
    body = message if message.startswith("Code:") else f"Code: {code}. DB::Exception: {message}"
    return PlainTextResponse(
        body.rstrip() + "\n",
        status_code=_STATUS_BY_CODE.get(code, 500),
        headers={"X-ClickHouse-Exception-Code": str(code)},
    )


def build_router(warehouse: Warehouse) -> APIRouter:
    router = APIRouter(tags=["sql"])
    timezone = warehouse.timezone()

    @router.get("/ping", response_class=PlainTextResponse, include_in_schema=False)
    def ping() -> str:
        return "Ok.\n"

    async def sql(request: Request) -> Response:
        params = dict(request.query_params)
        body = await request.body()
        query = params.get("query", "")
        ctype = request.headers.get("content-type", "")
        # curl -d and urllib label a plain query body as form-urlencoded; only multipart is a form.
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            query = fields.pop("query", query)
            params.update(fields)
        elif body:
            encoding = request.headers.get("content-encoding", "identity").lower()
            if encoding in ("gzip", "deflate"):
                try:
                    body = zlib.decompress(body, 47)  # 47: zlib or gzip header, detected
                except zlib.error as exc:
                    return _error(f"cannot decompress the {encoding} request body: {exc}", 27)
            elif encoding != "identity":
                # clickhouse-connect compresses only insert bodies (lz4/zstd), never a query
                return _error(f"Cannot execute query in readonly mode: a {encoding} body is an insert", 164)
            if query:  # a statement in the URL with a body is an INSERT carrying its data
                return _error("Cannot execute query in readonly mode: this endpoint only reads", 164)
            try:
                query = body.decode("utf-8")
            except UnicodeDecodeError:
                head = body.split(b"\n", 1)[0].decode("utf-8", "replace")
                if _INSERT_RE.match(head):  # an INSERT with binary rows after its first line
                    return _error("Cannot execute query in readonly mode: this endpoint only reads", 164)
                return _error("the request body is not UTF-8 text", 27)
        if not query.strip():
            if request.method == "GET":
                return PlainTextResponse("Ok.\n")
            return _error("Empty query", 62)
        binds: dict[str, Any] = {k[6:]: _Verbatim(v) for k, v in params.items() if k.startswith("param_")}
        settings = {k: v for k, v in params.items() if k not in _TRANSPORT and not k.startswith("param_")}
        explicit = _FORMAT_RE.search(query)
        fmt = explicit.group(1) if explicit else params.get("default_format") or "TabSeparated"
        if not explicit and "default_format" in params:
            query = f"{query}\nFORMAT {fmt}"
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            reader = warehouse.reader_for(params.get("database") or warehouse.database)
            stream = reader.raw_stream(query, parameters=binds or None, settings=settings or None)
        except (ClickHouseError, WarehouseError) as exc:
            text = str(exc)
            m = _CODE_RE.search(text)
            return _error(text[text.find("Code:") :] if m else text, int(m.group(1)) if m else 1002)
        headers = {
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": timezone,
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Server-Display-Name": "wrm",
            "X-ClickHouse-Summary": json.dumps({"read_rows": "0", "read_bytes": "0", "written_rows": "0"}),
        }
        return StreamingResponse(
            _chunks(stream), media_type=_CONTENT_TYPES.get(fmt, "application/octet-stream"), headers=headers
        )

    router.add_api_route("/", sql, methods=["GET", "POST"], include_in_schema=False)
    return router


def _chunks(stream: Any) -> Iterator[bytes]:
    try:
        while chunk := stream.read(1 << 20):
            yield chunk
    finally:
        stream.close()
