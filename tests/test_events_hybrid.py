"""Hybrid: a no-code flow posts events and hands the `traceparent` it gets back to an
instrumented service; the service's spans (the OTel SDK, continuing that context) join the same
trace under the run span, so the run is one part and the flow's own end event settles it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.conftest import module_server, settle
from tests.otlp import flush, sdk_provider
from wrm.server import WrmServer


@pytest.fixture(scope="module")
def srv(engine_dir: Path) -> Iterator[WrmServer]:
    with module_server(engine_dir) as server:
        yield server


def _post(server: WrmServer, body: Any) -> dict[str, Any]:
    r = httpx.post(f"http://{server.http_address}/v1/events", json=body, timeout=30)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def _agent(server: WrmServer, traceparent: str) -> None:
    """The instrumented service: continues the flow's trace from the traceparent header."""
    provider = sdk_provider(server.otlp_address, service="triage-agent")
    tracer = provider.get_tracer("agent")
    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    with tracer.start_as_current_span(
        "triage", context=context, attributes={"gen_ai.operation.name": "invoke_agent"}
    ), tracer.start_as_current_span(
        "classify",
        attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 90},
    ):  # fmt: skip
        pass
    flush(provider)
    provider.shutdown()


def test_the_agent_joins_the_flows_run_and_the_flow_settles_it(srv: WrmServer) -> None:
    ends = {"run.completed": "completed", "run.failed": "failed"}
    traces = {}
    for flow_end in ends:  # one run whose flow completes, one whose flow fails after the agent
        run_id = f"ticket-{flow_end}"
        started = _post(srv, {"type": "run.started", "run_id": run_id, "workflow": "support-triage"})
        traceparent = started["events"][0]["traceparent"]
        traces[run_id] = started["events"][0]["trace_id"]
        assert traceparent.startswith(f"00-{traces[run_id]}-") and traceparent.endswith("-01")
        _agent(srv, traceparent)
        end: dict[str, Any] = {"type": flow_end, "run_id": run_id}
        if flow_end == "run.failed":
            end["error"] = {"type": "HTTPError", "message": "helpdesk answered 500"}
        last = _post(
            srv, [{"type": "step.completed", "run_id": run_id, "step_name": "post-to-helpdesk"}, end]
        )
        assert {e["traceparent"] for e in last["events"]} == {traceparent}
    settle(srv)
    for flow_end, status in ends.items():
        run_id = f"ticket-{flow_end}"
        run = httpx.get(f"http://{srv.http_address}/v1/runs/{run_id}", timeout=30).json()
        assert run["trace_ids"] == [traces[run_id]]  # one part: the agent continued the flow's trace
        assert run["status"] == status  # the flow's end settles it, after the agent's spans
        assert run["workflow"] == "support-triage"
        assert (run["input_tokens"], run["output_tokens"]) == (1200, 90)
        flat = httpx.get(
            f"http://{srv.http_address}/v1/runs/{run_id}/steps", params={"view": "flat"}, timeout=30
        )
        assert sorted(s["name"] for s in flat.json()["steps"]) == ["classify", "post-to-helpdesk", "triage"]
        if status == "failed":
            assert "helpdesk answered 500" in run["failure_reason"]
