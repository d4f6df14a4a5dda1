"""A small invoice workflow traced by Traceloop's SDK (`traceloop-sdk`), exporting to WRM.

Run as `python -m tests.instrumented_app HOST:PORT`. It is a separate process because
`Traceloop.init` installs the process-wide OpenTelemetry tracer provider (which can be set only
once) and keeps a singleton; a subprocess keeps that away from the test process. It prints the
trace id (32 hex digits) as its last line of output.

Nothing leaves the machine: spans go to the given address with the SDK's OTLP/gRPC exporter,
no auto-instrumentation is enabled, and Traceloop's own API endpoint points at loopback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar, cast

os.environ.setdefault("TRACELOOP_TELEMETRY", "false")
os.environ.setdefault("TRACELOOP_METRICS_ENABLED", "false")
os.environ.setdefault("TRACELOOP_LOGGING_ENABLED", "false")

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from traceloop.sdk import Traceloop
from traceloop.sdk.decorators import agent, task, tool, workflow
from traceloop.sdk.tracing.manual import LLMMessage, LLMUsage, track_llm_call

F = TypeVar("F", bound=Callable[..., Any])


def typed(decorator: Any) -> Callable[[F], F]:
    """Traceloop's decorators are untyped; each returns a wrapper with the wrapped signature."""
    return cast(Callable[[F], F], decorator)


LEDGER_CALLS = {"n": 0}
TRACE: dict[str, int] = {}


@typed(tool(name="ledger_lookup"))
def ledger_lookup(invoice: str) -> dict[str, object]:
    LEDGER_CALLS["n"] += 1
    if LEDGER_CALLS["n"] == 1:
        raise ConnectionError("ledger unavailable")
    return {"invoice": invoice, "paid": False}


@typed(task(name="extract_fields"))
def extract_fields(text: str) -> dict[str, object]:
    # Traceloop's manual LLM instrumentation (no provider SDK, no network).
    with track_llm_call(vendor="openai", type="chat") as llm:
        llm.report_request(model="gpt-4o-mini", messages=[LLMMessage(role="user", content=text)])
        llm.report_response("gpt-4o-mini-2024-07-18", ["total=42.00 EUR"])
        llm.report_usage(LLMUsage(prompt_tokens=300, completion_tokens=40, total_tokens=340))
    return {"invoice": "inv-7", "total": 42}


@typed(agent(name="reconciler"))
def reconcile(fields: dict[str, object]) -> dict[str, object]:
    for attempt in (1, 2):
        try:
            return ledger_lookup(str(fields["invoice"]))
        except ConnectionError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@typed(workflow(name="invoice_intake", version=3))
def invoice_intake(text: str) -> dict[str, object]:
    TRACE["id"] = trace.get_current_span().get_span_context().trace_id
    Traceloop.set_association_properties({"user_id": "u-5", "session_id": "s-8"})
    return reconcile(extract_fields(text))


def main(address: str) -> str:
    Traceloop.init(
        app_name="invoice-bot",
        api_endpoint="http://127.0.0.1:9",  # only used for image uploads; none happen
        exporter=OTLPSpanExporter(endpoint=f"http://{address}", insecure=True, timeout=30),
        disable_batch=True,
        instruments=set(),
        resource_attributes={"deployment.environment.name": "ci"},
    )
    invoice_intake("Invoice inv-7 from ACME, total 42.00 EUR")
    # the SDK provider Traceloop installs has it
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    return f"{TRACE['id']:032x}"


if __name__ == "__main__":
    print(main(sys.argv[1]))
