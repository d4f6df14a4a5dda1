"""receiver.envelope without a warehouse: `frame` writes what ClickHouse's `Protobuf` format
reads with sql/schemas/otlp_envelope.proto (a varint length, then an `Envelope`). The frames are
decoded back with protobuf, using field numbers and types read from that .proto file, so a frame
that drifts from the schema the warehouse parses with fails here."""

from __future__ import annotations

import re
from typing import Protocol, cast

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal.decoder import _DecodeVarint  # type: ignore[attr-defined]  # private, no stub
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from receiver.envelope import SCHEMA, EnvelopeFields, frame, varint
from tests.otlp import make_span, request_of

_TYPES = {
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    # the nested request is read as its bytes (same wire type) and parsed with OTLP's own class
    "ExportTraceServiceRequest": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
}


def _envelope_class() -> type[Message]:
    """The Envelope message as declared in the schema file."""
    text = SCHEMA.read_text()
    body = re.search(r"message Envelope \{(.*?)\}", text, re.S)
    assert body, "no Envelope message in the schema"
    fields = re.findall(r"^\s*(\w+)\s+(\w+)\s*=\s*(\d+);", body.group(1), re.M)
    assert [f[1] for f in fields] == [
        "request",
        "ingested_at_ms",
        "retention_days",
        "default_tenant",
        "max_attribute_bytes",
        "key_tenant",
    ]
    proto = descriptor_pb2.FileDescriptorProto(name="envelope_test.proto", package="envtest", syntax="proto3")
    msg = proto.message_type.add(name="Envelope")
    for type_name, name, number in fields:
        msg.field.add(
            name=name,
            number=int(number),
            type=_TYPES[type_name],
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("envtest.Envelope"))


ENVELOPE = _envelope_class()


class _Envelope(Protocol):
    """The fields of ENVELOPE, a class built at run time that type checkers cannot see."""

    request: bytes
    ingested_at_ms: int
    retention_days: int
    default_tenant: str
    max_attribute_bytes: int
    key_tenant: str


def _decode(frames: bytes) -> list[_Envelope]:
    """Length-delimited Envelopes, as ClickHouse reads them; every byte must be consumed."""
    out: list[_Envelope] = []
    pos = 0
    while pos < len(frames):
        length, pos = _DecodeVarint(frames, pos)
        out.append(cast(_Envelope, ENVELOPE.FromString(frames[pos : pos + length])))
        pos += length
    assert pos == len(frames)
    return out


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16_383, 16_384, 2**31 - 1, 2**32 - 1, 2**63 - 1])
def test_varint_is_protobufs_varint(n: int) -> None:
    encoded = varint(n)
    assert _DecodeVarint(encoded, 0) == (n, len(encoded))
    assert len(encoded) == max(1, (n.bit_length() + 6) // 7)


def test_a_frame_decodes_back_to_every_field() -> None:
    request = request_of([make_span("a"), make_span("b")], service="svc").SerializeToString()
    fields = EnvelopeFields(retention_days=30, default_tenant="acme-prod", max_attribute_bytes=65_536)
    stamp = 1_764_633_600_123  # 2025-12-02, in ms
    [env] = _decode(frame(request, stamp, fields, retention_days=7))
    assert env.request == request  # the exporter's bytes, unchanged
    assert ExportTraceServiceRequest.FromString(env.request) == ExportTraceServiceRequest.FromString(request)
    assert env.ingested_at_ms == stamp
    assert env.retention_days == 7  # the request's own, not the default in `fields`
    assert env.default_tenant == "acme-prod"
    assert env.max_attribute_bytes == 65_536


def test_frames_concatenate_and_keep_their_sizes() -> None:
    """A flush is frames joined: each must end where the next begins, whatever the sizes (a
    request over 2 MiB needs a 4-byte length)."""
    fields = EnvelopeFields(retention_days=3650, default_tenant="é-tenant", max_attribute_bytes=0)
    requests = [b"", request_of([make_span("x")]).SerializeToString(), b"\x0a" + varint(3) + b"\x0a\x01z"]
    requests.append(b"\x0a" + varint(2**21) + b"\x00" * 2**21)  # any bytes: frame never parses them
    joined = b"".join(frame(r, 2**41 + i, fields, 3650) for i, r in enumerate(requests))
    decoded = _decode(joined)
    assert [e.request for e in decoded] == requests
    assert [e.ingested_at_ms for e in decoded] == [2**41 + i for i in range(len(requests))]
    assert {(e.retention_days, e.default_tenant, e.max_attribute_bytes) for e in decoded} == {
        (3650, "é-tenant", 0)
    }


def test_a_key_tenant_travels_in_field_6_and_only_when_given() -> None:
    """The tenant of the sender's key (sql/011 reads it before wrm.tenant.id); an empty one is
    left out, as proto3 leaves out a default, so a frame without a key is byte for byte as before."""
    request = request_of([make_span("a")]).SerializeToString()
    fields = EnvelopeFields(retention_days=30, default_tenant="default", max_attribute_bytes=1024)
    [keyed, unkeyed] = _decode(frame(request, 1, fields, 30, "acme") + frame(request, 2, fields, 30))
    assert (keyed.key_tenant, unkeyed.key_tenant) == ("acme", "")
    assert keyed.request == unkeyed.request == request
    assert frame(request, 2, fields, 30, "") == frame(request, 2, fields, 30)
