"""OTLP AnyValue → the string stored in an attribute map.

Strings stay as they are, bools are `true`/`false`, ints and doubles their canonical text, bytes
base64, arrays and key-value lists JSON (bytes inside as base64, nesting cut at MAX_DEPTH).
Values longer than the limit are cut on a UTF-8 boundary and end with TRUNCATION_MARK.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 16
TRUNCATION_MARK = "…[truncated by wrm]"


def _plain(value: Any, depth: int) -> Any:
    """AnyValue → a JSON-ready Python value."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        d = value.double_value
        return d if math.isfinite(d) else repr(d)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if depth >= MAX_DEPTH:
        return "…[nested too deep]"
    if kind == "array_value":
        return [_plain(v, depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value, depth + 1) for kv in value.kvlist_value.values}
    return None


def to_text(value: Any) -> str:
    """One AnyValue as stored text (before truncation)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return repr(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind is None:
        return ""
    return json.dumps(_plain(value, 0), ensure_ascii=False, separators=(",", ":"))


def truncate(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` UTF-8 bytes, marker included."""
    room = limit - len(TRUNCATION_MARK.encode())
    return text.encode("utf-8")[:room].decode("utf-8", "ignore") + TRUNCATION_MARK


def to_map(kvs: Iterable[Any], limit: int, where: str, cut: list[str]) -> dict[str, str]:
    """Attribute list → map. Keys of cut values are appended to `cut` as `where:KEY`."""
    out: dict[str, str] = {}
    quick = limit // 4  # a str of at most limit/4 characters is at most `limit` UTF-8 bytes
    for kv in kvs:
        text = to_text(kv.value)
        if len(text) > quick and len(text.encode("utf-8")) > limit:
            text = truncate(text, limit)
            cut.append(f"{where}:{kv.key}")
        out[kv.key] = text
    return out
