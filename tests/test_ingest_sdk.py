"""The OpenTelemetry SDK's own exporter → WRM → every OTLP field in `spans`."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode

from tests.otlp import flush, sdk_provider
from wrm.server import WrmServer


def _workflow(server: WrmServer) -> dict[str, SpanContext]:
    """A 10-span workflow: a root, an LLM step retried after an exception, tools, a link."""
    provider = sdk_provider(server.otlp_address, service="refund-agent", **{"service.version": "1.4.2"})
    tracer = provider.get_tracer("tests.workflow", "0.1")
    ids: dict[str, SpanContext] = {}
    with tracer.start_as_current_span("refund-workflow", kind=SpanKind.SERVER) as root:
        root.set_attribute("wrm.workflow.name", "refund")
        root.set_attribute("tags", ["a", "b"])
        ids["root"] = root.get_span_context()
        for attempt in (1, 2):
            with tracer.start_as_current_span("llm.chat", kind=SpanKind.CLIENT) as llm:
                llm.set_attribute("gen_ai.operation.name", "chat")
                llm.set_attribute("gen_ai.usage.input_tokens", 120)
                llm.set_attribute("wrm.step.attempt", attempt)
                llm.set_attribute("temperature", 0.25)
                llm.set_attribute("stream", False)
                if attempt == 1:
                    llm.record_exception(TimeoutError("model took too long"))
                    llm.set_status(Status(StatusCode.ERROR, "timeout"))
                    ids["failed"] = llm.get_span_context()
        for i in range(6):
            with tracer.start_as_current_span(f"tool-{i}") as tool:
                tool.set_attribute("gen_ai.tool.name", f"lookup-{i}")
        with tracer.start_as_current_span("notify", links=[Link(ids["failed"], {"why": "follows up"})]) as n:
            ids["linked"] = n.get_span_context()
    flush(provider)
    provider.shutdown()
    return ids


def test_sdk_workflow_lands_with_every_field(server: WrmServer) -> None:
    ids = _workflow(server)
    wh = server.warehouse
    assert wh is not None
    trace = f"{ids['root'].trace_id:032x}"
    rows = wh.rows(
        "SELECT name, span_id, parent_span_id, kind, status_code, status_message, service_name, tenant_id,"
        " attributes, resource_attributes, scope_name, scope_version, `events.name`, `events.attributes`,"
        " `links.trace_id`, `links.span_id`, `links.attributes`, start_time, end_time, duration_ns"
        " FROM spans WHERE trace_id = {t:String} ORDER BY start_time",
        {"t": trace},
    )
    assert len(rows) == 10
    by_name: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        by_name.setdefault(r[0], []).append(r)
    root = by_name["refund-workflow"][0]
    root_id = f"{ids['root'].span_id:016x}"
    assert root[1] == root_id and root[2] == "" and root[3] == "SERVER"
    assert root[6] == "refund-agent" and root[7] == "default"
    assert root[8]["wrm.workflow.name"] == "refund" and root[8]["tags"] == '["a","b"]'
    assert root[9]["service.version"] == "1.4.2"
    assert root[10] == "tests.workflow" and root[11] == "0.1"
    # every other span hangs under the root
    assert all(r[2] == root_id for r in rows if r[0] != "refund-workflow")
    failed, retried = sorted(by_name["llm.chat"], key=lambda r: r[8]["wrm.step.attempt"])
    assert failed[4] == "ERROR" and failed[5] == "timeout" and failed[3] == "CLIENT"
    assert failed[12] == ["exception"]
    assert failed[13][0]["exception.type"] == "TimeoutError"
    assert failed[13][0]["exception.message"] == "model took too long"
    assert "exception.stacktrace" in failed[13][0]
    assert retried[4] == "UNSET" and retried[12] == []
    assert failed[8]["gen_ai.usage.input_tokens"] == "120"
    assert failed[8]["temperature"] == "0.25" and failed[8]["stream"] == "false"
    notify = by_name["notify"][0]
    assert notify[14] == [trace] and notify[15] == [f"{ids['failed'].span_id:016x}"]
    assert notify[16] == [{"why": "follows up"}]
    for r in rows:  # datetimes come back in microseconds, duration_ns in nanoseconds
        assert r[18] >= r[17]
        assert abs(r[19] - (r[18] - r[17]).total_seconds() * 1e9) < 1000
