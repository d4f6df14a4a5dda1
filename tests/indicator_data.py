"""Synthetic workflow runs whose indicators are known by construction, sent with the real
OpenTelemetry SDK exporter (explicit start and end times, so runs land on chosen days).

Each planned run: a run span; one `classify` LLM step (two attempts, the first failing, when
the run is a retry); a `check` validation with a quality score; a `review` human step for
some runs. First-pass runs, retries and failures are spread evenly over each day, so every
day of a version has the version's rates exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    set_span_in_context,
)

from tests.otlp import flush, sdk_provider

SEC = 1_000_000_000
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class PlannedRun:
    version: str
    day: int  # days before today (UTC)
    hour: int
    outcome: str  # "first_pass", "retry" (completed after a failed attempt), "failed"
    duration_ns: int
    input_tokens: int  # per classify attempt
    output_tokens: int
    quality: float
    human_wait_s: int  # 0: no human step
    cx: float | None = None  # wrm.cx.score on the run span

    @property
    def start_ns(self) -> int:
        day = TODAY - timedelta(days=self.day)
        return int(day.timestamp()) * SEC + self.hour * 3600 * SEC + 17 * SEC

    @property
    def attempts(self) -> int:
        return 1 if self.outcome == "first_pass" else 2 if self.outcome == "retry" else 1


@dataclass(frozen=True)
class VersionPlan:
    version: str
    days: range  # days before today
    runs_per_day: int
    first_pass: int  # per day
    retries: int  # per day; the rest fail
    median_s: float  # durations are lognormal around this
    tokens: tuple[int, int]
    human_every: int  # every n-th run of a day has a human review
    quality: float
    cx: float | None = None


def plan(versions: list[VersionPlan], seed: int = 7) -> list[PlannedRun]:
    rng = random.Random(seed)
    runs = []
    for v in versions:
        for day in v.days:
            for i in range(v.runs_per_day):
                outcome = (
                    "first_pass"
                    if i < v.first_pass
                    else "retry"
                    if i < v.first_pass + v.retries
                    else "failed"
                )
                ms = max(50, round(rng.lognormvariate(0, 0.5) * v.median_s * 1000))
                runs.append(
                    PlannedRun(
                        version=v.version,
                        day=day,
                        hour=i % 24,
                        outcome=outcome,
                        duration_ns=ms * 1_000_000,
                        input_tokens=v.tokens[0],
                        output_tokens=v.tokens[1],
                        quality=v.quality,
                        human_wait_s=60 if i % v.human_every == 0 else 0,
                        cx=v.cx,
                    )
                )
    return runs


def send(
    otlp_address: str,
    runs: list[PlannedRun],
    workflow: str,
    tenant: str = "",
    env: str = "production",
    key: str = "",
) -> list[ReadableSpan]:
    """Send the runs (with `key`, an API key, when given); returns the spans as sent, for `resend`."""
    resource = {"deployment.environment.name": env}
    if tenant:
        resource["wrm.tenant.id"] = tenant
    provider = sdk_provider(otlp_address, service=f"{workflow}-svc", key=key, **resource)
    sent = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(sent))
    tracer = provider.get_tracer("tests.indicators")
    for run in runs:
        _send_run(tracer, run, workflow)
    delivered = flush(provider)
    provider.shutdown()
    finished = list(sent.get_finished_spans())
    assert delivered == len(finished), (delivered, len(finished))
    return finished


def resend(otlp_address: str, spans: list[ReadableSpan]) -> None:
    """Deliver the same spans again (same ids), as an exporter retrying would."""
    exporter = OTLPSpanExporter(endpoint=f"http://{otlp_address}", insecure=True, timeout=30)
    for i in range(0, len(spans), 512):
        assert exporter.export(spans[i : i + 512]) == SpanExportResult.SUCCESS
    exporter.shutdown()


def _send_run(tracer: Tracer, run: PlannedRun, workflow: str) -> None:
    t0, dur = run.start_ns, run.duration_ns
    root = tracer.start_span(
        workflow,
        start_time=t0,
        attributes={"wrm.workflow.name": workflow, "wrm.workflow.version": run.version},
    )
    if run.cx is not None:
        root.set_attribute("wrm.cx.score", run.cx)
    ctx = set_span_in_context(root)
    step = dur // 10
    for attempt in range(1, run.attempts + 1):
        s = tracer.start_span(
            "classify",
            context=ctx,
            start_time=t0 + attempt * step,
            attributes={
                "wrm.step.type": "llm",
                "gen_ai.request.model": "test-model",
                "gen_ai.usage.input_tokens": run.input_tokens,
                "gen_ai.usage.output_tokens": run.output_tokens,
                "wrm.cost.usd": 0.001,
            },
        )
        if attempt == 1 and run.outcome in ("retry", "failed"):
            s.set_status(Status(StatusCode.ERROR, "model timed out"))
        s.end(end_time=t0 + attempt * step + step // 2)
    check = tracer.start_span(
        "check",
        context=ctx,
        start_time=t0 + 4 * step,
        attributes={
            "wrm.step.type": "validation",
            "wrm.validation.name": "schema",
            "wrm.validation.passed": run.outcome != "failed",
            "wrm.quality.score": run.quality,
        },
    )
    check.end(end_time=t0 + 5 * step)
    if run.human_wait_s:
        review = tracer.start_span(
            "review",
            context=ctx,
            start_time=t0 + 6 * step,
            attributes={"wrm.step.type": "human", "wrm.hitl.decision": "approved", "wrm.hitl.actor": "ana"},
        )
        review.end(end_time=t0 + 6 * step + run.human_wait_s * SEC)
    if run.outcome == "failed":
        root.set_status(Status(StatusCode.ERROR, "classification failed"))
    root.end(end_time=t0 + dur)


def start_running_run(otlp_address: str, name: str, key: str = "") -> None:
    """A run whose run span has not arrived yet, so its status is running: one step of workflow
    `live` under a remote parent."""
    parent = NonRecordingSpan(
        SpanContext(int.from_bytes(name.encode().ljust(16, b"x")[:16]), 77, True, TraceFlags(1))
    )
    provider = sdk_provider(
        otlp_address, service="live-svc", key=key, **{"deployment.environment.name": "production"}
    )
    span = provider.get_tracer("t").start_span(
        name, context=set_span_in_context(parent), attributes={"wrm.workflow.name": "live"}
    )
    span.end()
    assert flush(provider) == 1
    provider.shutdown()
