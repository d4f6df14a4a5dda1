"""Test helper: one request to the SQL port with urllib, answered as status, headers and body."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from wrm.server import WrmServer


class Answer(NamedTuple):
    status: int
    code: str  # X-ClickHouse-Exception-Code, "" when the query succeeded
    body: str
    retry_after: str
    headers: Mapping[str, str] = MappingProxyType({})  # every response header, lower-case names


def post(
    server: WrmServer, sql: str, timeout: float = 60, headers: dict[str, str] | None = None, **params: str
) -> Answer:
    """POST `sql` as the body; `params` go in the URL (settings, default_format, param_*)."""
    url = f"http://{server.http_address}/?" + urllib.parse.urlencode(params)
    return _send(urllib.request.Request(url, data=sql.encode(), headers=headers or {}), timeout)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post_form(server: WrmServer, fields: dict[str, str], timeout: float = 60) -> Answer:
    """POST `fields` as multipart/form-data, as clients that send the query as a form field do."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    ]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    request = urllib.request.Request(
        f"http://{server.http_address}/",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    return _send(request, timeout)


def _send(request: urllib.request.Request, timeout: float) -> Answer:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            names = {k.lower(): v for k, v in resp.headers.items()}
            return Answer(resp.status, "", resp.read().decode(), resp.headers.get("Retry-After", ""), names)
    except urllib.error.HTTPError as err:
        headers = err.headers
        return Answer(
            err.code,
            headers["X-ClickHouse-Exception-Code"] or "",
            err.read().decode(),
            headers["Retry-After"] or "",
            {k.lower(): v for k, v in headers.items()},
        )
