"""Realistic OTLP workflow traces, serialized once so the load generator only moves bytes.

Each request holds `spans_per_request` spans grouped into traces of 10-20 spans: a root workflow
span, LLM-call steps (gen_ai.* attributes), tool-call steps, retrieval steps, and now and then an
ERROR step with an `exception` event. Every request is sent many times, so the bytes come with the
offsets of every trace_id; `RequestTemplate.render` overwrites the first 8 bytes of each trace id
with a per-send stamp. Ids are fixed-length fields, so the patched message stays valid, and every
span sent is a distinct row in the ReplacingMergeTree (its sort key ends with trace_id, span_id).
"""

from __future__ import annotations

import base64
import json
import random
import time
from dataclasses import dataclass

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span, Status

STAMP_BYTES = 8  # the leading bytes of each trace_id that render() overwrites

_SERVICES = (
    ("support-agent", "2.4.1"),
    ("invoice-extractor", "1.9.0"),
    ("research-assistant", "0.17.3"),
    ("claims-triage", "3.0.2"),
)
_ENVS = ("production", "staging")
_WORKFLOWS = ("answer_ticket", "extract_invoice", "summarize_report", "triage_claim", "plan_research")
_MODELS = ("gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022", "gemini-1.5-pro", "llama-3.1-70b-instruct")
_TOOLS = ("search_kb", "fetch_customer", "sql_query", "http_get", "send_email", "ocr_page", "calculator")
_PROSE = (
    "the customer reports that the invoice total does not match the purchase order and asks for "
    "a corrected document before the end of the quarter while the attached receipt lists three "
    "items with different tax rates and a shipping fee that was not agreed in the contract"
)
_WORDS = tuple(_PROSE.split(" "))
_STACK = "\n".join(
    f'  File "/srv/app/workflows/{m}.py", line {n}, in {f}'
    for m, n, f in (("runner", 88, "run_step"), ("steps", 142, "call_tool"), ("tools", 57, "http_get"))
)


def _kv(key: str, value: str | int | float | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _text(rng: random.Random, lo: int, hi: int) -> str:
    """Prose of lo..hi bytes: prompts and tool arguments are the long values real spans carry."""
    target = rng.randint(lo, hi)
    out: list[str] = []
    size = 0
    while size < target:
        word = rng.choice(_WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:target]


def _common(span: Span, workflow: str, step: str, step_type: str, run_id: str) -> None:
    span.attributes.extend(
        [
            _kv("wrm.workflow.name", workflow),
            _kv("wrm.step.name", step),
            _kv("wrm.step.type", step_type),
            # Not wrm.run.id: templates re-stamp trace ids, not attribute values, so with a run id
            # every rendered copy of a trace would be one more part of the same run (spec 4.3).
            # The same bytes under a key WRM does not read keep the payload as large.
            _kv("app.job.id", run_id),
        ]
    )


def _llm_step(rng: random.Random, span: Span) -> None:
    model = rng.choice(_MODELS)
    inp, out = rng.randint(200, 6000), rng.randint(20, 900)
    span.kind = Span.SPAN_KIND_CLIENT
    span.attributes.extend(
        [
            _kv("gen_ai.operation.name", "chat"),
            _kv("gen_ai.system", model.split("-")[0]),
            _kv("gen_ai.request.model", model),
            _kv("gen_ai.response.model", model),
            _kv("gen_ai.request.temperature", round(rng.random(), 2)),
            _kv("gen_ai.usage.input_tokens", inp),
            _kv("gen_ai.usage.output_tokens", out),
            _kv("gen_ai.response.finish_reasons", "stop"),
            _kv("gen_ai.prompt", _text(rng, 200, 600)),
        ]
    )


def _tool_step(rng: random.Random, span: Span, tool: str) -> None:
    span.kind = Span.SPAN_KIND_INTERNAL
    span.attributes.extend(
        [
            _kv("gen_ai.operation.name", "execute_tool"),
            _kv("gen_ai.tool.name", tool),
            _kv("gen_ai.tool.call.id", f"call_{rng.getrandbits(48):012x}"),
            _kv("wrm.tool.arguments", _text(rng, 60, 300)),
            _kv("wrm.tool.result_bytes", rng.randint(100, 50_000)),
            _kv("wrm.step.attempt", rng.randint(1, 3)),
            _kv("wrm.step.cached", rng.random() < 0.2),
        ]
    )


def _fail(rng: random.Random, span: Span, end_ns: int) -> None:
    message = f"upstream returned 503 after {rng.randint(1, 30)} s: {_text(rng, 40, 120)}"
    span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=message[:200]))
    event = span.events.add(name="exception", time_unix_nano=end_ns)
    event.attributes.extend(
        [
            _kv("exception.type", "httpx.HTTPStatusError"),
            _kv("exception.message", message),
            _kv("exception.stacktrace", "Traceback (most recent call last):\n" + _STACK),
        ]
    )


def _trace(rng: random.Random, scope_spans: list[Span], n_spans: int, now_ns: int) -> bytes:
    """Append one workflow run of n_spans spans; return its trace id."""
    trace_id = rng.randbytes(16)
    workflow = rng.choice(_WORKFLOWS)
    run_id = f"run-{rng.getrandbits(64):016x}"
    start = now_ns - rng.randint(1, 3_000) * 1_000_000_000
    root_id = rng.randbytes(8)
    t = start + 1_000_000
    steps: list[Span] = []
    for i in range(n_spans - 1):
        dur = rng.randint(5, 4_000) * 1_000_000
        span = Span(
            trace_id=trace_id,
            span_id=rng.randbytes(8),
            parent_span_id=root_id,
            start_time_unix_nano=t,
            end_time_unix_nano=t + dur,
        )
        roll = rng.random()
        if roll < 0.45:
            span.name = "chat " + workflow
            _common(span, workflow, f"llm_{i}", "llm", run_id)
            _llm_step(rng, span)
        else:
            tool = rng.choice(_TOOLS)
            span.name = "execute_tool " + tool
            _common(span, workflow, f"{tool}_{i}", "tool" if roll < 0.9 else "retrieval", run_id)
            _tool_step(rng, span, tool)
        if rng.random() < 0.03:
            _fail(rng, span, t + dur)
        steps.append(span)
        t += dur + rng.randint(0, 20) * 1_000_000
    root = Span(
        trace_id=trace_id,
        span_id=root_id,
        name="workflow " + workflow,
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start,
        end_time_unix_nano=t,
    )
    _common(root, workflow, "workflow", "workflow", run_id)
    root.attributes.extend(
        [
            _kv("wrm.run.steps", n_spans - 1),
            _kv("wrm.run.trigger", rng.choice(("api", "schedule", "webhook"))),
            _kv("enduser.id", f"user-{rng.randint(1, 5000)}"),
            _kv("wrm.input", _text(rng, 100, 400)),
        ]
    )
    if any(s.status.code == Status.STATUS_CODE_ERROR for s in steps):
        root.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="a step failed"))
    scope_spans.append(root)
    scope_spans.extend(steps)
    return trace_id


def build_request(rng: random.Random, spans: int, now_ns: int | None = None) -> tuple[bytes, list[bytes]]:
    """One serialized request of exactly `spans` spans, and the trace ids it holds."""
    now_ns = now_ns or time.time_ns()
    request = ExportTraceServiceRequest()
    trace_ids: list[bytes] = []
    per_service = [spans // len(_SERVICES) + (i < spans % len(_SERVICES)) for i in range(len(_SERVICES))]
    for (service, version), budget in zip(_SERVICES, per_service, strict=True):
        rs: ResourceSpans = request.resource_spans.add()
        rs.resource.attributes.extend(
            [
                _kv("service.name", service),
                _kv("service.version", version),
                _kv("deployment.environment.name", rng.choice(_ENVS)),
                _kv("telemetry.sdk.language", "python"),
                _kv("host.name", f"worker-{rng.randint(1, 40):02d}"),
            ]
        )
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = "wrm.sdk", "0.3.0"
        made: list[Span] = []
        while budget > 0:
            n = min(budget, rng.randint(10, 20))
            if 0 < budget - n < 2:  # a trace needs a root and at least one step
                n = budget
            trace_ids.append(_trace(rng, made, n, now_ns))
            budget -= n
        ss.spans.extend(made)
    return request.SerializeToString(), trace_ids


@dataclass(frozen=True)
class RequestTemplate:
    """Serialized request cut at every trace_id, so a fresh stamp costs one bytes.join."""

    chunks: tuple[bytes, ...]
    spans: int
    trace_tails: tuple[bytes, ...] = ()  # each trace id after its stamp: render(s) sends stamp + tail
    hex_stamp: bool = False  # OTLP JSON: ids are hex text, so the stamp is 16 hex digits

    @classmethod
    def build(cls, rng: random.Random, spans: int) -> RequestTemplate:
        data, trace_ids = build_request(rng, spans)
        offsets: list[int] = []
        for tid in trace_ids:  # random 16-byte ids: a byte-exact match is that id, nothing else
            at = data.find(tid)
            while at != -1:
                offsets.append(at)
                at = data.find(tid, at + 16)
        offsets.sort()
        chunks: list[bytes] = []
        prev = 0
        for at in offsets:
            chunks.append(data[prev:at])
            prev = at + STAMP_BYTES
        chunks.append(data[prev:])
        if len(offsets) != spans:
            raise AssertionError(f"found {len(offsets)} trace ids for {spans} spans")
        return cls(tuple(chunks), spans, tuple(tid[STAMP_BYTES:] for tid in trace_ids))

    def render(self, stamp: int) -> bytes:
        """The request with the first 8 bytes of every trace id replaced by `stamp` (non-zero)."""
        raw = stamp.to_bytes(STAMP_BYTES, "big")
        return (raw.hex().encode() if self.hex_stamp else raw).join(self.chunks)

    def as_json(self) -> RequestTemplate:
        """The same request in the OTLP JSON encoding (OTLP/HTTP `application/json`), cut at
        every trace id's hex text likewise."""
        data = otlp_json(self.render(1))
        stamp = (1).to_bytes(STAMP_BYTES, "big").hex().encode()
        chunks: list[bytes] = []
        prev = 0
        for tail in self.trace_tails:
            needle = b'"traceId":"' + stamp + tail.hex().encode() + b'"'
            at = data.find(needle, prev)
            while at != -1:
                start = at + len(b'"traceId":"')
                chunks.append(data[prev:start])
                prev = start + len(stamp)
                at = data.find(needle, prev)
        chunks.append(data[prev:])
        if len(chunks) != self.spans + 1:
            raise AssertionError(f"found {len(chunks) - 1} trace ids for {self.spans} spans")
        return RequestTemplate(tuple(chunks), self.spans, self.trace_tails, hex_stamp=True)


def otlp_json(data: bytes) -> bytes:
    """An ExportTraceServiceRequest in the OTLP JSON encoding: protobuf's JSON mapping with hex ids."""
    document = json_format.MessageToDict(ExportTraceServiceRequest.FromString(data))
    for rs in document.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for obj in (span, *span.get("links", [])):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if obj.get(key):
                            obj[key] = base64.b64decode(obj[key]).hex()
    return json.dumps(document, separators=(",", ":")).encode()
