"""Frame accepted requests for the warehouse: each one wrapped in an `Envelope` message
(sql/schemas/otlp_envelope.proto, installed with the package data) with what the receiver adds,
length-delimited as ClickHouse's `Protobuf` format reads them. Built by concatenating bytes: the
request is not re-encoded again."""

from __future__ import annotations

from dataclasses import dataclass

from warehouse.sql_files import schema_path

SCHEMA = schema_path("otlp_envelope.proto")
FORMAT_SCHEMA = f"{SCHEMA}:Envelope"


@dataclass(frozen=True)
class EnvelopeFields:
    retention_days: int  # the default; a request may carry its tenant's own
    default_tenant: str
    max_attribute_bytes: int


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def frame(
    request: bytes, stamp_ms: int, fields: EnvelopeFields, retention_days: int, key_tenant: str = ""
) -> bytes:
    """One length-delimited Envelope: request (1), ingested_at_ms (2), retention_days (3),
    default_tenant (4), max_attribute_bytes (5), and key_tenant (6) when a key fixes the tenant
    (an empty string is proto3's default, so it is left out)."""
    tenant = fields.default_tenant.encode()
    owner = key_tenant.encode()
    body = b"".join(
        (
            b"\x0a", varint(len(request)), request,
            b"\x10", varint(stamp_ms),
            b"\x18", varint(retention_days),
            b"\x22", varint(len(tenant)), tenant,
            b"\x28", varint(fields.max_attribute_bytes),
            b"\x32" + varint(len(owner)) + owner if owner else b"",
        )
    )  # fmt: skip
    return varint(len(body)) + body
