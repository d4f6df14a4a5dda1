"""Spans made by third-party instrumentation libraries from PyPI → WRM → runs and steps.

Each test runs a small agent workflow under one library's own decorators, with no network and no
real model (the "LLM" is a plain function that reports usage the way the library lets it), exports
the spans to the running server, and checks the run and the steps a user would see:

* OpenInference (`openinference-instrumentation`): `OITracer` decorators `chain`, `agent`, `llm`,
  `tool`, and `using_session` / `using_user`, on a tracer of our own provider;
* Langfuse (`langfuse`, the OpenTelemetry-based v3+ SDK): `@observe(as_type=...)`,
  `propagate_attributes`, a client on our own provider whose span exporter is the OTLP/gRPC one;
* Traceloop (`traceloop-sdk`): `@workflow`, `@task`, `@agent`, `@tool` and `track_llm_call`, in a
  subprocess (tests/instrumented_app.py) because `Traceloop.init` takes the global tracer provider.
  Skipped where `traceloop-sdk` is not installed: it is the optional `traceloop` extra, because it
  brings ~85 packages and pins OpenTelemetry (`pip install -e '.[dev,traceloop]'`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langfuse import Langfuse, get_client, observe, propagate_attributes
from openinference.instrumentation import (
    OITracer,
    TraceConfig,
    get_llm_attributes,
    using_session,
    using_user,
)
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from tests.conftest import module_server, settle
from tests.otlp import flush, sdk_provider
from wrm.server import WrmServer

ROOT = Path(__file__).resolve().parent.parent


# --- reading what WRM made of a trace ------------------------------------------------------------


@pytest.fixture(scope="module")
def server(engine_dir: Path) -> Iterator[WrmServer]:
    """One server for the module: each test reads only the runs and steps of the traces it made."""
    with module_server(engine_dir) as srv:
        yield srv


def _run(server: WrmServer, trace_id: str) -> dict[str, Any]:
    assert server.warehouse is not None
    result = server.warehouse.client.query("SELECT * FROM runs WHERE trace_id = {t:String}", {"t": trace_id})
    rows = list(result.named_results())
    assert [r["trace_id"] for r in rows] == [trace_id], "one trace, one run"
    return rows[0]


def _steps(server: WrmServer, trace_id: str) -> list[dict[str, Any]]:
    assert server.warehouse is not None
    result = server.warehouse.client.query(
        "SELECT * FROM steps WHERE trace_id = {t:String} ORDER BY start_time, step_id", {"t": trace_id}
    )
    return list(result.named_results())


def _shape(steps: list[dict[str, Any]]) -> list[tuple[str, str, int, str, str]]:
    """(name, type, attempt, status, parent step name or '') per step, in start order."""
    names = {s["step_id"]: s["name"] for s in steps}
    return [
        (s["name"], s["type"], s["attempt"], s["status"], names.get(s["parent_step_id"], s["parent_step_id"]))
        for s in steps
    ]


def _current_trace_id() -> str:
    return f"{otel_trace.get_current_span().get_span_context().trace_id:032x}"


def _current_span_id() -> str:
    return f"{otel_trace.get_current_span().get_span_context().span_id:016x}"


# --- OpenInference -------------------------------------------------------------------------------


def _openinference_ticket(server: WrmServer, genai_semconv: bool) -> dict[str, str]:
    """A support ticket: a triage agent asks an LLM, then a CRM tool fails once and is retried."""
    provider = sdk_provider(server.otlp_address, service="support-agent")
    tracer = OITracer(provider.get_tracer(__name__), config=TraceConfig(enable_genai_semconv=genai_semconv))
    ids: dict[str, str] = {}
    crm_calls = {"n": 0}

    @tracer.tool(name="crm_lookup")
    def crm_lookup(customer: str) -> dict[str, str]:
        crm_calls["n"] += 1
        if crm_calls["n"] == 1:
            raise ConnectionError("crm unavailable")
        return {"customer": customer, "plan": "pro"}

    def usage(_output: str) -> dict[str, Any]:
        return get_llm_attributes(
            provider="openai",
            model_name="gpt-4o-mini",
            token_count={"prompt": 120, "completion": 30, "total": 150},
        )

    # annotated: left to infer, the ParamSpec of openinference's `llm(...)` overload is Never
    llm: Callable[[Callable[[str], str]], Callable[[str], str]] = tracer.llm(
        name="classify", process_output=usage
    )

    @llm
    def classify(text: str) -> str:
        return "billing"

    @tracer.agent(name="triage-agent")
    def triage(text: str) -> str:
        return classify(text)

    @tracer.chain(name="resolve-ticket")
    def resolve(text: str) -> str:
        ids["trace"], ids["root"] = _current_trace_id(), _current_span_id()
        label = triage(text)
        for attempt in (1, 2):
            try:
                crm_lookup("c-42")
                break
            except ConnectionError:
                if attempt == 2:
                    raise
        return label

    with using_session("sess-1"), using_user("user-7"):
        assert resolve("I was charged twice") == "billing"
    flush(provider)
    provider.shutdown()
    settle(server)
    return ids


@pytest.mark.parametrize("genai_semconv", [False, True], ids=["openinference", "openinference+genai"])
def test_openinference_decorators_make_run_and_steps(server: WrmServer, genai_semconv: bool) -> None:
    # With enable_genai_semconv the library also writes gen_ai.* (operation name, tool name,
    # usage, conversation id) next to its own attributes: WRM must read the same run from both.
    ids = _openinference_ticket(server, genai_semconv)
    run = _run(server, ids["trace"])
    assert run["run_span_id"] == ids["root"]  # the root CHAIN is the run span
    assert (run["status"], run["workflow_name"], run["service_name"]) == (
        "completed",
        "resolve-ticket",
        "support-agent",
    )
    assert (run["step_count"], run["retries"], run["failed_steps"], run["first_pass"]) == (4, 1, 1, 0)
    assert run["failure_reason"] == ""  # the retry recovered
    assert (run["input_tokens"], run["output_tokens"]) == (120, 30)  # llm.token_count.*
    assert (run["session_id"], run["user_id"]) == ("sess-1", "user-7")  # using_session / using_user

    steps = _steps(server, ids["trace"])
    assert _shape(steps) == [
        ("triage-agent", "agent", 1, "completed", ""),
        ("classify", "llm", 1, "completed", "triage-agent"),
        ("crm_lookup", "tool", 1, "failed", ""),
        ("crm_lookup", "tool", 2, "completed", ""),
    ]
    llm = steps[1]
    assert (llm["model"], llm["input_tokens"], llm["output_tokens"]) == ("gpt-4o-mini", 120, 30)
    failed = steps[2]
    assert (failed["error_type"], failed["error_message"], failed["failure_kind"]) == (
        "ConnectionError",
        "crm unavailable",
        "error",
    )
    assert all(s["session_id"] == "sess-1" and s["user_id"] == "user-7" for s in steps)


def test_openinference_async_chain_that_gives_up_fails_the_run(server: WrmServer) -> None:
    """Async decorators; the tool fails twice and the chain re-raises: a failed run."""
    provider = sdk_provider(server.otlp_address, service="refund-service")
    tracer = OITracer(provider.get_tracer(__name__), config=TraceConfig())
    ids: dict[str, str] = {}

    @tracer.tool(name="refund_api")
    async def refund_api(order: str) -> str:
        raise ConnectionError(f"refund api down for {order}")

    @tracer.chain(name="issue-refund")
    async def issue_refund(order: str) -> str:
        ids["trace"] = _current_trace_id()
        for attempt in (1, 2):
            try:
                return await refund_api(order)
            except ConnectionError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    with pytest.raises(ConnectionError):
        asyncio.run(issue_refund("o-9"))
    flush(provider)
    provider.shutdown()
    settle(server)

    run = _run(server, ids["trace"])
    assert (run["status"], run["workflow_name"], run["step_count"]) == ("failed", "issue-refund", 2)
    assert (run["retries"], run["failed_steps"], run["first_pass"]) == (1, 2, 0)
    assert run["failed_step"] == "refund_api"
    assert run["failure_reason"] == "refund_api: ConnectionError: refund api down for o-9"
    assert _shape(_steps(server, ids["trace"])) == [
        ("refund_api", "tool", 1, "failed", ""),
        ("refund_api", "tool", 2, "failed", ""),
    ]


# --- Langfuse ------------------------------------------------------------------------------------


@pytest.fixture
def langfuse_key(server: WrmServer) -> Iterator[str]:
    """A Langfuse client (its own project key) exporting through its own span processor to WRM.

    `base_url` is a closed loopback port: the client makes no API call unless asked to (scores,
    prompts, media), and none of these tests asks.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": "refund-bot"}))
    key = f"pk-lf-{uuid.uuid4().hex}"
    client = Langfuse(
        public_key=key,
        secret_key="sk-lf-test",
        base_url="http://127.0.0.1:9",
        tracer_provider=provider,
        span_exporter=OTLPSpanExporter(endpoint=f"http://{server.otlp_address}", insecure=True, timeout=30),
        environment="staging",
        release="3.2.0",
    )
    yield key
    client.shutdown()
    provider.shutdown()


def _langfuse_refund(key: str, *, fail_generation: bool = False) -> dict[str, str]:
    """A refund: fetch the order (fails once, retried), search the policy, an agent drafts a reply."""
    ids: dict[str, str] = {}
    fetch_calls = {"n": 0}

    @observe(name="fetch-order", as_type="tool")
    def fetch_order(order_id: str) -> dict[str, Any]:
        fetch_calls["n"] += 1
        if fetch_calls["n"] == 1:
            raise ConnectionError("orders api unavailable")
        return {"order": order_id, "total": 42}

    @observe(name="policy-search", as_type="retriever")
    def policy_search(query: str) -> list[str]:
        return ["refunds within 30 days"]

    @observe(name="draft-reply", as_type="generation")
    def draft_reply(order: dict[str, Any], policy: list[str]) -> str:
        get_client().update_current_generation(
            model="claude-haiku",
            usage_details={"input": 200, "output": 50},
            cost_details={"total": 0.0012},
        )
        if fail_generation:
            raise RuntimeError("model overloaded")
        return "Your refund is approved."

    @observe(name="refund-agent", as_type="agent")
    def refund_agent(order: dict[str, Any]) -> str:
        return draft_reply(order, policy_search("refund policy"))

    @observe(name="handle-refund")
    def handle_refund(order_id: str) -> str:
        ids["trace"], ids["root"] = _current_trace_id(), _current_span_id()
        with propagate_attributes(trace_name="refunds", user_id="u-9", session_id="s-3", version="2.0"):
            for attempt in (1, 2):
                try:
                    order = fetch_order(order_id)
                    break
                except ConnectionError:
                    if attempt == 2:
                        raise
            return refund_agent(order)  # type: ignore[possibly-undefined]  # the loop set it or raised

    if fail_generation:  # the generation's error must reach the caller, or the run would not fail
        with pytest.raises(RuntimeError, match="model overloaded"):
            # observe's wrapper takes it; its type keeps the function's own parameters
            handle_refund("o-1", langfuse_public_key=key)  # type: ignore[call-arg]
    else:
        handle_refund("o-1", langfuse_public_key=key)  # type: ignore[call-arg]  # as above
    get_client(public_key=key).flush()
    return ids


def test_langfuse_observe_makes_run_and_steps(server: WrmServer, langfuse_key: str) -> None:
    ids = _langfuse_refund(langfuse_key)
    settle(server)
    run = _run(server, ids["trace"])
    assert run["run_span_id"] == ids["root"]
    assert (run["status"], run["workflow_name"], run["workflow_version"], run["environment"]) == (
        "completed",
        "refunds",  # propagate_attributes(trace_name=...) → langfuse.trace.name
        "2.0",  # propagate_attributes(version=...) → langfuse.version
        "staging",  # Langfuse(environment=...) → langfuse.environment
    )
    assert (run["step_count"], run["retries"], run["failed_steps"], run["first_pass"]) == (5, 1, 1, 0)
    assert (run["session_id"], run["user_id"], run["service_name"]) == ("s-3", "u-9", "refund-bot")
    assert run["cost_usd"] == pytest.approx(0.0012)  # langfuse.observation.cost_details.total

    steps = _steps(server, ids["trace"])
    assert _shape(steps) == [
        ("fetch-order", "tool", 1, "failed", ""),
        ("fetch-order", "tool", 2, "completed", ""),
        ("refund-agent", "agent", 1, "completed", ""),
        ("policy-search", "retrieval", 1, "completed", "refund-agent"),
        ("draft-reply", "llm", 1, "completed", "refund-agent"),
    ]
    # Langfuse marks a failed observation with level ERROR and the message only (no exception
    # event, so no exception type in the data).
    assert (steps[0]["error_message"], steps[0]["failure_kind"]) == ("orders api unavailable", "error")
    generation = steps[4]
    assert generation["model"] == "claude-haiku"  # langfuse.observation.model.name
    assert generation["cost_usd"] == pytest.approx(0.0012)


def test_langfuse_generation_usage_counts_tokens(server: WrmServer, langfuse_key: str) -> None:
    ids = _langfuse_refund(langfuse_key)
    settle(server)
    run = _run(server, ids["trace"])
    generation = next(s for s in _steps(server, ids["trace"]) if s["name"] == "draft-reply")
    assert (generation["input_tokens"], generation["output_tokens"]) == (200, 50)
    assert (run["input_tokens"], run["output_tokens"]) == (200, 50)


def test_langfuse_failed_generation_fails_the_run(server: WrmServer, langfuse_key: str) -> None:
    ids = _langfuse_refund(langfuse_key, fail_generation=True)
    settle(server)
    run = _run(server, ids["trace"])
    assert (run["status"], run["failed_steps"], run["retries"], run["first_pass"]) == ("failed", 3, 1, 0)
    # The failed step that ended last: the exception went up through the agent, which ends after
    # the generation that raised it.
    assert run["failed_step"] == "refund-agent"
    assert run["failure_reason"] == "refund-agent: model overloaded"
    statuses = [(s["name"], s["status"]) for s in _steps(server, ids["trace"])]
    assert statuses == [
        ("fetch-order", "failed"),
        ("fetch-order", "completed"),
        ("refund-agent", "failed"),  # the exception passed through the agent too
        ("policy-search", "completed"),
        ("draft-reply", "failed"),
    ]


# --- Traceloop -----------------------------------------------------------------------------------


def _traceloop_invoice(server: WrmServer) -> str:
    if importlib.util.find_spec("traceloop") is None:
        pytest.skip("traceloop-sdk is not installed")
    done = subprocess.run(
        [sys.executable, "-m", "tests.instrumented_app", server.otlp_address],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    trace_id = done.stdout.strip().splitlines()[-1]
    assert len(trace_id) == 32, done.stdout
    settle(server)
    return trace_id


def test_traceloop_decorators_make_run_and_steps(server: WrmServer) -> None:
    trace_id = _traceloop_invoice(server)
    run = _run(server, trace_id)
    assert (run["status"], run["workflow_name"], run["workflow_version"]) == (
        "completed",
        "invoice_intake",  # traceloop.workflow.name
        "3",  # @workflow(version=3) → traceloop.entity.version
    )
    assert (run["service_name"], run["environment"]) == ("invoice-bot", "ci")
    assert (run["retries"], run["failed_steps"], run["first_pass"]) == (1, 1, 0)
    assert (run["user_id"], run["session_id"]) == ("u-5", "s-8")  # traceloop.association.properties.*
    assert (run["input_tokens"], run["output_tokens"]) == (300, 40)  # gen_ai.usage.* of the LLM call

    decorated = [s for s in _shape(_steps(server, trace_id)) if s[0] != "openai.chat"]
    assert decorated == [
        ("extract_fields", "other", 1, "completed", ""),
        ("reconciler", "agent", 1, "completed", ""),
        ("ledger_lookup", "tool", 1, "failed", "reconciler"),
        ("ledger_lookup", "tool", 2, "completed", "reconciler"),
    ]
    failed = next(s for s in _steps(server, trace_id) if s["status"] == "failed")
    assert (failed["error_type"], failed["error_message"]) == ("ConnectionError", "ledger unavailable")


def test_traceloop_llm_call_is_an_llm_step(server: WrmServer) -> None:
    trace_id = _traceloop_invoice(server)
    steps = _steps(server, trace_id)
    assert [s for s in _shape(steps) if s[1] == "llm"] == [
        ("openai.chat", "llm", 1, "completed", "extract_fields")
    ]
    llm = next(s for s in steps if s["type"] == "llm")
    assert (llm["model"], llm["input_tokens"], llm["output_tokens"]) == ("gpt-4o-mini-2024-07-18", 300, 40)
    assert _run(server, trace_id)["step_count"] == 5
