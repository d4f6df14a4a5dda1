"""Where a key travels: `Authorization: Bearer` everywhere; on the SQL port also the ways
ClickHouse clients send a password (HTTP basic auth, `X-ClickHouse-Key`, `?password=`), with any
user name. Pure functions over header values, so every port reads a key the same way."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping


def bearer(authorization: str | None) -> str | None:
    """The key in an `Authorization: Bearer <key>` value (gRPC metadata or an HTTP header)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def basic_password(authorization: str | None) -> str | None:
    """The password of an `Authorization: Basic` value; the user name is ignored."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def sql_port_key(headers: Mapping[str, str], params: Mapping[str, str]) -> str | None:
    """The key a ClickHouse client sent: Bearer, basic auth, `X-ClickHouse-Key`, or `password`."""
    auth = headers.get("authorization")
    return (
        bearer(auth)
        or basic_password(auth)
        or headers.get("x-clickhouse-key")
        or params.get("password")
        or None
    )
