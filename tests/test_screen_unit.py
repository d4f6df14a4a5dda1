"""receiver.screen without a warehouse: every refusal rule of spec 2.1.3 at its edges, the
`partial_success` message of 2.1.4, and which bytes go on to the warehouse (2.1.5)."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from receiver.screen import Rejection, resource_tenant, screen_request, span_problem

TRACE, SPAN, PARENT = b"\x01" * 16, b"\x02" * 8, b"\x03" * 8
START = 1_700_000_000 * 10**9
Y2096 = 3_976_214_400 * 10**9  # 2096-01-01T00:00:00Z
MAX_NS = 2**63 - 1  # 2262-04-11T23:47:16.854775807Z


def _span(name: str = "fetch", /, **fields: object) -> Span:
    values: dict[str, object] = {
        "trace_id": TRACE,
        "span_id": SPAN,
        "start_time_unix_nano": START,
        "end_time_unix_nano": START + 1,
    }
    values.update(fields)
    return Span(name=name, **values)  # type: ignore[arg-type]  # each test gives the right types


@pytest.mark.parametrize(
    ("fields", "kind", "text"),
    [
        ({"trace_id": b"\x01" * 8}, "trace_id length", "span 'fetch': trace_id is 8 bytes, expected 16"),
        ({"trace_id": b"\x01" * 17}, "trace_id length", "trace_id is 17 bytes, expected 16"),
        ({"trace_id": b""}, "trace_id length", "trace_id is 0 bytes, expected 16"),
        ({"trace_id": bytes(16)}, "trace_id zero", "span 'fetch': trace_id is all zeros"),
        ({"span_id": b"\x02" * 7}, "span_id length", "span_id is 7 bytes, expected 8"),
        ({"span_id": b""}, "span_id length", "span_id is 0 bytes, expected 8"),
        ({"span_id": bytes(8)}, "span_id zero", "span 'fetch': span_id is all zeros"),
        ({"parent_span_id": b"\x03" * 4}, "parent_span_id length", "is 4 bytes, expected 0 or 8"),
        ({"parent_span_id": b"\x03" * 16}, "parent_span_id length", "parent_span_id is 16 bytes"),
        ({"start_time_unix_nano": 0, "end_time_unix_nano": 5}, "start zero", "start_time_unix_nano is 0"),
        ({"start_time_unix_nano": 0, "end_time_unix_nano": 0}, "start zero", "start_time_unix_nano is 0"),
        ({"start_time_unix_nano": 2**63, "end_time_unix_nano": 2**63}, "time range", "past 2262-04-11"),
        ({"end_time_unix_nano": 2**63}, "time range", "a timestamp is past 2262-04-11, the largest storable"),
        ({"end_time_unix_nano": 2**64 - 1}, "time range", "past 2262-04-11"),
        (
            {"start_time_unix_nano": Y2096, "end_time_unix_nano": Y2096 + 1},
            "start too late",
            "span 'fetch': start_time_unix_nano is after 2096-01-01, past which retention cannot be kept",
        ),
        ({"start_time_unix_nano": MAX_NS, "end_time_unix_nano": MAX_NS}, "start too late", "2096-01-01"),
        (
            {"end_time_unix_nano": START - 1},
            "end before start",
            f"span 'fetch': end_time_unix_nano {START - 1} is before start_time_unix_nano {START}",
        ),
        ({"end_time_unix_nano": 0}, "end before start", "end_time_unix_nano 0 is before"),
    ],
)
def test_each_refusal_rule(fields: dict[str, object], kind: str, text: str) -> None:
    problem = span_problem(_span(**fields))
    assert problem is not None and problem[0] == kind, problem
    assert text in problem[1]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"parent_span_id": PARENT},  # 8 bytes
        {"parent_span_id": b""},  # a root
        {"end_time_unix_nano": START},  # zero duration
        {"start_time_unix_nano": 1, "end_time_unix_nano": 1},  # the smallest start
        {"start_time_unix_nano": Y2096 - 1, "end_time_unix_nano": MAX_NS},  # both edges, just inside
        {"trace_id": b"\x00" * 15 + b"\x01", "span_id": b"\x00" * 7 + b"\x01"},  # not all zeros
    ],
)
def test_valid_spans_at_the_edges_pass(fields: dict[str, object]) -> None:
    assert span_problem(_span(**fields)) is None


def test_the_first_problem_of_a_span_is_the_one_named() -> None:
    problem = span_problem(_span(trace_id=bytes(16), span_id=b"", start_time_unix_nano=0))
    assert problem is not None and problem[0] == "trace_id zero"


def test_a_long_name_is_cut_in_the_message() -> None:
    problem = span_problem(_span("n" * 500, trace_id=b""))
    assert problem is not None and f"span '{'n' * 80}': trace_id" in problem[1]


def test_rejection_message_format() -> None:
    assert Rejection().message() == ""
    one = Rejection(1, "span 'a': trace_id is all zeros", 1)
    assert one.message() == "span 'a': trace_id is all zeros (1 span had this problem)"
    five = Rejection(5, "span 'fetch': trace_id is 8 bytes, expected 16", 2)
    assert five.message() == (
        "span 'fetch': trace_id is 8 bytes, expected 16 (2 spans had this problem; "
        "3 more rejected for other reasons)"
    )
    assert Rejection(3, "p", 3).message() == "p (3 spans had this problem)"


def test_rejections_add_up_and_the_first_problem_stays_first() -> None:
    a, b = Rejection(2, "p", 1), Rejection(3, "q", 3)
    assert a.plus(b) == Rejection(5, "p", 1)
    assert a.plus(Rejection(2, "p", 2)) == Rejection(4, "p", 3)
    assert Rejection().plus(b) == b and b.plus(Rejection()) == b


def _request(*resources: tuple[str | None, list[Span]]) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for tenant, spans in resources:
        rs = req.resource_spans.add()
        name = rs.resource.attributes.add()
        name.key, name.value.string_value = "service.name", "svc"
        if tenant is not None:
            kv = rs.resource.attributes.add()
            kv.key, kv.value.string_value = "wrm.tenant.id", tenant
        rs.scope_spans.add().spans.extend(spans)
    return req


def test_a_clean_request_goes_on_as_its_canonical_encoding() -> None:
    req = _request((None, [_span("a"), _span("b", span_id=b"\x05" * 8)]))
    data = req.SerializeToString()
    screened = screen_request(req)
    assert screened.payload == data and screened.spans == 2 and screened.rejected == Rejection()


def test_the_warehouse_gets_what_was_screened_not_the_exporters_bytes() -> None:
    """A duplicated singular field is legal protobuf (the last one wins) but the engine stored
    it as an empty value; unknown fields made it skip spans. Only the canonical encoding of
    the screened message, without unknown fields, goes on."""
    span = _span("a").SerializeToString()
    duplicated = span + b"\x12\x08" + b"\x07" * 8 + b"\xa8\x1f\x01"  # span_id again; field 501
    scope = b"\x12" + bytes([len(duplicated)]) + duplicated
    resource = b"\x12" + bytes([len(scope)]) + scope
    req = ExportTraceServiceRequest.FromString(b"\x0a" + bytes([len(resource)]) + resource)
    screened = screen_request(req)
    stored = ExportTraceServiceRequest.FromString(screened.payload)
    only = stored.resource_spans[0].scope_spans[0].spans[0]
    assert only.span_id == b"\x07" * 8
    assert b"\xa8\x1f\x01" not in screened.payload  # the unknown field 501 is dropped
    assert screened.payload.count(b"\x12\x08") == 1  # one span_id, the one that was screened


def test_refused_spans_are_removed_and_counted() -> None:
    good = [_span(f"good-{i}", span_id=bytes([i + 1]) * 8) for i in range(3)]
    req = _request(
        (None, [_span("short", trace_id=b"\x01" * 8), good[0], _span("zero", span_id=bytes(8)), good[1]]),
        ("acme", [_span("short-2", trace_id=b"\x01" * 3), good[2]]),
    )
    screened = screen_request(req)
    assert screened.spans == 3
    assert screened.rejected == Rejection(3, "span 'short': trace_id is 8 bytes, expected 16", 2)
    assert screened.rejected.message() == (
        "span 'short': trace_id is 8 bytes, expected 16 (2 spans had this problem; "
        "1 more rejected for other reasons)"
    )
    stored = ExportTraceServiceRequest.FromString(screened.payload)
    names = [s.name for rs in stored.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert names == ["good-0", "good-1", "good-2"]


@pytest.mark.parametrize("tenant", ["", "no such!", "-leading-dash", "x" * 65, "é"])
def test_a_malformed_tenant_refuses_every_span_of_its_resource(tenant: str) -> None:
    req = _request((tenant, [_span("t1"), _span("t2")]), ("acme", [_span("kept")]))
    screened = screen_request(req)
    assert screened.spans == 1 and screened.rejected.count == 2 and screened.rejected.same_problem == 2
    assert "resource attribute wrm.tenant.id=" in screened.rejected.first_problem
    assert "is not a tenant id" in screened.rejected.first_problem
    stored = ExportTraceServiceRequest.FromString(screened.payload)
    assert [resource_tenant(rs.resource) for rs in stored.resource_spans] == ["acme"]


@pytest.mark.parametrize("tenant", ["acme", "a", "A.b_c-9", "x" * 64])
def test_well_formed_tenants_pass(tenant: str) -> None:
    req = _request((tenant, [_span()]))
    data = req.SerializeToString()
    screened = screen_request(req)
    assert screened.spans == 1 and screened.rejected.count == 0 and screened.payload == data


def test_resource_tenant_reads_the_attribute() -> None:
    req = _request((None, []), ("acme", []))
    assert [resource_tenant(rs.resource) for rs in req.resource_spans] == [None, "acme"]
