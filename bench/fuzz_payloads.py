"""Mutated OTLP trace requests from a seeded RNG, for the fuzz test and `bench.fuzz`.

Each payload starts from a valid ExportTraceServiceRequest (several resources, scopes and spans
with every attribute type, events, links and status) and is then damaged in one or a few of
these ways: bit flips, truncation, a varint replaced (e.g. a bool as 106, a huge or negative
number), a length prefix changed, a tag's wire type or field number changed, fields swapped or
duplicated, random bytes inserted. Tampering walks the protobuf wire format, so it hits tags,
varints and lengths at every nesting level rather than only the outer bytes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from receiver.envelope import varint

KINDS = ("bitflip", "truncate", "varint", "length", "wiretype", "fieldno", "swap", "duplicate", "insert")


@dataclass(frozen=True)
class Payload:
    data: bytes
    kinds: tuple[str, ...]  # the mutations applied, in order


@dataclass(frozen=True)
class _Field:
    """One field in the wire format: where its tag starts, where its value starts and ends."""

    start: int
    number: int
    wire: int
    value_start: int
    end: int


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("bad varint")
        b = data[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return value, pos
        shift += 7


def _enc(n: int) -> bytes:
    """A varint of any int, negative ones as protobuf writes them (two's complement, 64 bits)."""
    return varint(n & ((1 << 64) - 1))


def fields(data: bytes, lo: int = 0, hi: int | None = None, depth: int = 0) -> list[_Field]:
    """Every field at every level that parses as a message; [] when [lo, hi) is not one."""
    hi = len(data) if hi is None else hi
    out: list[_Field] = []
    pos = lo
    try:
        while pos < hi:
            key, vpos = _varint(data, pos)
            number, wire = key >> 3, key & 7
            if number == 0:
                return []
            if wire == 0:
                _, end = _varint(data, vpos)
            elif wire == 1:
                end = vpos + 8
            elif wire == 5:
                end = vpos + 4
            elif wire == 2:
                length, vpos = _varint(data, vpos)
                end = vpos + length
            else:
                return []
            if end > hi:
                return []
            out.append(_Field(pos, number, wire, vpos, end))
            pos = end
    except ValueError:
        return []
    if depth < 8:
        for f in list(out):
            if f.wire == 2 and f.end > f.value_start:
                out.extend(fields(data, f.value_start, f.end, depth + 1))
    return out


def _value(rng: random.Random, depth: int = 0) -> AnyValue:
    pick = rng.randrange(7 if depth < 3 else 5)
    v = AnyValue()
    if pick == 0:
        v.string_value = rng.choice(["", "ok", "é" * rng.randrange(1, 20), "x" * rng.randrange(100)])
    elif pick == 1:
        v.bool_value = rng.random() < 0.5
    elif pick == 2:
        v.int_value = rng.choice([0, -1, 2**63 - 1, -(2**63), rng.randrange(-1000, 1000)])
    elif pick == 3:
        v.double_value = rng.choice([0.0, -1.5, 1e308, float("inf"), float("nan"), rng.random()])
    elif pick == 4:
        v.bytes_value = rng.randbytes(rng.randrange(6))
    elif pick == 5:
        v.array_value.values.extend(_value(rng, depth + 1) for _ in range(rng.randrange(4)))
    else:
        v.kvlist_value.values.extend(
            KeyValue(key=f"k{i}", value=_value(rng, depth + 1)) for i in range(rng.randrange(4))
        )
    return v


def _attributes(rng: random.Random, n: int) -> list[KeyValue]:
    keys = ["a", "b", "gen_ai.usage.input_tokens"]
    return [KeyValue(key=rng.choice([*keys, f"k{i}"]), value=_value(rng)) for i in range(n)]


def valid_request(rng: random.Random, now_ns: int) -> ExportTraceServiceRequest:
    """A request every part of which WRM stores: recent times, random ids, varied values."""
    req = ExportTraceServiceRequest()
    for r in range(rng.randrange(1, 3)):
        rs = req.resource_spans.add()
        rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=f"fuzz-{r}")))
        rs.resource.attributes.extend(_attributes(rng, rng.randrange(3)))
        for _ in range(rng.randrange(1, 3)):
            ss = rs.scope_spans.add()
            ss.scope.name, ss.scope.version = "fuzz", "1"
            ss.scope.attributes.extend(_attributes(rng, rng.randrange(2)))
            trace = rng.randbytes(15) + b"\x01"
            for _ in range(rng.randrange(1, 5)):
                start = now_ns - rng.randrange(1, 10**10)
                span = Span(
                    trace_id=trace,
                    span_id=rng.randbytes(7) + b"\x01",
                    name=rng.choice(["step", "llm", "tool", ""]),
                    kind=Span.SpanKind.ValueType(rng.randrange(6)),
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + rng.randrange(10**9),
                    flags=rng.choice([0, 1, 257]),
                    status=Status(
                        code=Status.StatusCode.ValueType(rng.randrange(3)), message=rng.choice(["", "boom"])
                    ),
                )
                span.attributes.extend(_attributes(rng, rng.randrange(5)))
                for _ in range(rng.randrange(2)):
                    ev = span.events.add(time_unix_nano=start, name="exception")
                    ev.attributes.extend(_attributes(rng, rng.randrange(3)))
                for _ in range(rng.randrange(2)):
                    ln = span.links.add(trace_id=rng.randbytes(16), span_id=rng.randbytes(8), flags=1)
                    ln.attributes.extend(_attributes(rng, rng.randrange(2)))
                ss.spans.append(span)
    return req


def mutate(data: bytes, rng: random.Random, kind: str) -> bytes:
    """One mutation of `kind` (see KINDS); returns the damaged bytes."""
    if not data:
        return rng.randbytes(rng.randrange(1, 16))
    if kind == "bitflip":
        buf = bytearray(data)
        for _ in range(rng.randrange(1, 5)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        return bytes(buf)
    if kind == "truncate":
        return data[: rng.randrange(len(data))]
    if kind == "insert":
        at = rng.randrange(len(data) + 1)
        return data[:at] + rng.randbytes(rng.randrange(1, 8)) + data[at:]
    found = fields(data)
    if not found:
        return mutate(data, rng, "bitflip")
    f = rng.choice(found)
    tag = data[f.start : f.value_start]
    key, after_key = _varint(data, f.start)
    if kind == "varint":
        if f.wire != 0:
            return mutate(data, rng, "bitflip")
        n = rng.choice([2, 106, 255, 2**31, 2**32 + 5, 2**63, 2**64 - 1, rng.randrange(1 << 20)])
        return data[: f.value_start] + _enc(n) + data[f.end :]
    if kind == "length":
        if f.wire != 2:
            return mutate(data, rng, "bitflip")
        length, _ = _varint(data, after_key)
        new = max(0, length + rng.choice([-3, -1, 1, 2, 1000]))
        return data[:after_key] + _enc(new) + data[f.value_start :]
    if kind == "wiretype":
        new_key = (key & ~7) | rng.choice([w for w in (0, 1, 2, 5) if w != f.wire])
        return data[: f.start] + _enc(new_key) + data[after_key:]
    if kind == "fieldno":
        new_key = (rng.randrange(1, 20) << 3) | f.wire
        return data[: f.start] + _enc(new_key) + data[after_key:]
    if kind == "duplicate":
        return data[: f.end] + data[f.start : f.end] + data[f.end :]
    # swap: exchange this field with a sibling-or-not field that does not overlap it
    others = [g for g in found if g.end <= f.start or g.start >= f.end]
    if not others:
        return data + tag
    g = rng.choice(others)
    a, b = (f, g) if f.start < g.start else (g, f)
    middle = data[a.end : b.start]
    return data[: a.start] + data[b.start : b.end] + middle + data[a.start : a.end] + data[b.end :]


def payloads(seed: int, count: int, now_ns: int) -> Iterator[Payload]:
    """`count` payloads: most mutated once or a few times, a few left valid as a control."""
    rng = random.Random(seed)
    for _ in range(count):
        data = valid_request(rng, now_ns).SerializeToString()
        applied: list[str] = []
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3]) if rng.random() > 0.03 else 0):
            kind = rng.choice(KINDS)
            data = mutate(data, rng, kind)
            applied.append(kind)
        yield Payload(data, tuple(applied))
