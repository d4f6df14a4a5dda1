"""The ClickHouse HTTP protocol as the SQL port speaks it: a request read into a `SqlRequest`, and
errors written as `Code: N. DB::Exception: …` bodies with the `X-ClickHouse-Exception-Code` header.

Speaks the subset clients use: the query in `?query=` and/or the body (plain, gzip/deflate, or
multipart form fields), `database`, `default_format`, `param_NAME` bound parameters, and other URL
parameters (or form fields) as settings, which the gate then refuses unless they change nothing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response

from warehouse.bounded_body import Undecodable, inflate_bounded, read_bounded

# URL parameters that steer the HTTP exchange rather than the query.
TRANSPORT = frozenset(
    {
        "query", "database", "default_format", "query_id", "session_id", "session_timeout",
        "session_check", "compress", "decompress", "user", "password", "quota_key", "buffer_size",
        "wait_end_of_query", "enable_http_compression", "client_protocol_version", "role",
        "send_progress_in_http_headers", "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close", "http_zlib_compression_level",
    }
)  # fmt: skip
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_QUERY_ID_RE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
_INSERT_RE = re.compile(r"^\s*INSERT\b", re.IGNORECASE)
STATUS_BY_CODE = {
    62: 400, 60: 404, 81: 404, 164: 403, 497: 403, 46: 400, 47: 400, 53: 400, 36: 400, 115: 400,
    202: 429, 516: 401,
}  # fmt: skip
CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TSV": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}
READONLY = 164
QUERY_IS_TOO_LARGE = 62  # ClickHouse answers a query past max_query_size with 62 (SYNTAX_ERROR)
MAX_QUERY_BYTES = 16 * 1024 * 1024  # far beyond any statement; a compressed body inflates no further
_ONLY_READS = "Cannot execute query in readonly mode"


class Verbatim:
    """A `param_*` value already in ClickHouse's escaped text form. clickhouse-connect formats
    unknown types with str(), so this reaches the engine byte for byte, never re-escaped."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class SqlRequest:
    """One statement to run, as the client sent it (the gate checks it before it runs)."""

    query: str
    database: str
    default_format: str
    binds: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    query_id: str = ""


class ProtocolError(Exception):
    """The request is refused before it reaches the engine; `code` is a ClickHouse error code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def error_response(message: str, code: int, headers: dict[str, str] | None = None) -> Response:
    body = (
        message[message.find("Code:") :] if "Code:" in message else f"Code: {code}. DB::Exception: {message}"
    )
    return PlainTextResponse(
        body.rstrip() + "\n",
        status_code=STATUS_BY_CODE.get(code, 500),
        headers={"X-ClickHouse-Exception-Code": str(code), **(headers or {})},
    )


async def read_request(request: Request, default_database: str) -> SqlRequest | None:
    """The statement in `request`, or None when it carries none (a GET of `/` is a health check).
    Raises ProtocolError for what is refused before any engine work (an insert body, bad input)."""
    params = dict(request.query_params)
    body = await _bounded_body(request)
    query = params.get("query", "")
    ctype = request.headers.get("content-type", "")
    # curl -d and urllib label a plain query body as form-urlencoded; only multipart is a form.
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        query = fields.pop("query", query)
        params.update(fields)
    elif body:
        query = _body_query(body, request.headers.get("content-encoding", "identity").lower(), query)
    if not query.strip():
        if request.method == "GET":
            return None
        raise ProtocolError("Empty query", 62)
    fmt = params.get("default_format") or "TabSeparated"
    if not _NAME_RE.match(fmt):
        raise ProtocolError(f"Unknown format {fmt!r}", 73)
    return SqlRequest(
        query=query,
        database=params.get("database") or default_database,
        default_format=fmt,
        binds={k[6:]: Verbatim(v) for k, v in params.items() if k.startswith("param_")},
        settings={k: v for k, v in params.items() if k not in TRANSPORT and not k.startswith("param_")},
        query_id=_query_id(params.get("query_id", "")),
    )


async def _bounded_body(request: Request) -> bytes:
    """The body, refused past MAX_QUERY_BYTES before more of it is read (or, for a form, before
    any of it is: a multipart body must say its length)."""
    length = request.headers.get("content-length", "")
    too_large = ProtocolError(
        f"Query is too large: the request body is over {MAX_QUERY_BYTES} bytes. (QUERY_IS_TOO_LARGE)",
        QUERY_IS_TOO_LARGE,
    )
    if not length and request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ProtocolError("a multipart request body must carry Content-Length", 27)
    return await read_bounded(request, MAX_QUERY_BYTES, too_large)  # request.form() parses its cache


def _query_id(given: str) -> str:
    """The caller's query id when it is plain text (it is echoed in a response header, so a CR or
    LF would break the response), else a fresh one."""
    return given if _QUERY_ID_RE.match(given) else str(uuid.uuid4())


def _body_query(body: bytes, encoding: str, url_query: str) -> str:
    if encoding in ("gzip", "deflate"):
        too_large = ProtocolError(
            f"Query is too large: the {encoding} body inflates past {MAX_QUERY_BYTES} bytes. "
            "(QUERY_IS_TOO_LARGE)",
            QUERY_IS_TOO_LARGE,
        )
        try:
            body = inflate_bounded(body, MAX_QUERY_BYTES, too_large)
        except Undecodable as exc:
            raise ProtocolError(f"cannot decompress the {encoding} request body: {exc}", 27) from None
    elif encoding != "identity":
        # clickhouse-connect compresses only insert bodies (lz4/zstd), never a query
        raise ProtocolError(
            f"Cannot execute query in readonly mode: a {encoding} body is an insert", READONLY
        )
    if url_query:  # a statement in the URL with a body is an INSERT carrying its data
        raise ProtocolError(f"{_ONLY_READS}: this endpoint only reads", READONLY)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        head = body.split(b"\n", 1)[0].decode("utf-8", "replace")
        if _INSERT_RE.match(head):  # an INSERT with binary rows after its first line
            raise ProtocolError(f"{_ONLY_READS}: this endpoint only reads", READONLY) from None
        raise ProtocolError("the request body is not UTF-8 text", 27) from None
