"""Load generator: processes × threads sending pre-serialized OTLP requests over raw gRPC, or
over OTLP/HTTP (`http`: protobuf, `http-json`: the OTLP JSON encoding) on a keep-alive
http.client connection per thread.

Separate processes keep the client's GIL out of the measurement; raw bytes (no request
serializer) keep protobuf encoding out of it. A span counts as acknowledged only when its
request returned OK, minus `partial_success.rejected_spans`. RESOURCE_EXHAUSTED and UNAVAILABLE
are retried with the same bytes after a back-off, as an OTLP exporter would (over HTTP: 429,
502, 503, 504, with the same back-off, so the transports compare like for like).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from bench.workload import RequestTemplate

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRYABLE = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE})
HTTP_RETRYABLE = frozenset({429, 502, 503, 504})  # what OTLP/HTTP exporters retry
MAX_ATTEMPTS = 50
RPC_TIMEOUT_S = 120.0


@dataclass
class WorkerConfig:
    """What one load process needs; picklable so it crosses the spawn boundary."""

    index: int  # 1-based; the high byte of every stamp, so stamps never collide across processes
    target: str
    threads: int
    templates: int
    spans_per_request: int
    seed: int
    key: str = ""  # an API key sent with every request (`authorization: Bearer`), as exporters do
    transport: str = "grpc"  # grpc, http (OTLP/HTTP protobuf) or http-json (OTLP/HTTP JSON)


@dataclass
class WorkerResult:
    """Totals of one thread, summed into one per process and then one per run."""

    requests_ok: int = 0
    acked_spans: int = 0
    rejected_spans: int = 0
    retries: int = 0
    retry_codes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    last_ack: float = 0.0  # time.monotonic() of the last OK answer
    cpu_s: float = 0.0  # CPU time of the load process while sending
    # one per OK request: (its stamp, time.monotonic() of the answer, traces it carried). The
    # stamp is the first 8 bytes of each of its trace ids (the rest comes from its template), so
    # a run id (the trace id in hex) names its request: int(run_id[:16], 16) == stamp.
    acks: list[tuple[int, float, int]] = field(default_factory=list)

    def merge(self, other: WorkerResult) -> None:
        self.requests_ok += other.requests_ok
        self.acked_spans += other.acked_spans
        self.rejected_spans += other.rejected_spans
        self.retries += other.retries
        self.retry_codes.update(other.retry_codes)
        self.failures.extend(other.failures)
        self.latencies_ms.extend(other.latencies_ms)
        self.last_ack = max(self.last_ack, other.last_ack)
        self.cpu_s += other.cpu_s
        self.acks.extend(other.acks)


@dataclass(frozen=True)
class Answer:
    """One attempt's outcome: stored (with spans refused one by one), to retry, or failed."""

    rejected: int = 0
    retry: str = ""  # the retryable code, e.g. RESOURCE_EXHAUSTED or HTTP 429
    failure: str = ""


class GrpcSender:
    def __init__(self, cfg: WorkerConfig) -> None:
        self._channel = grpc.insecure_channel(
            cfg.target,
            options=[
                ("grpc.max_send_message_length", -1),
                ("grpc.use_local_subchannel_pool", 1),  # one TCP connection per thread, not one shared
            ],
        )
        self._export: grpc.UnaryUnaryMultiCallable[bytes, ExportTraceServiceResponse] = (
            self._channel.unary_unary(
                EXPORT, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString
            )
        )
        self._metadata = (("authorization", f"Bearer {cfg.key}"),) if cfg.key else None

    def send(self, data: bytes) -> Answer:
        try:
            response = self._export(data, timeout=RPC_TIMEOUT_S, metadata=self._metadata)
        except grpc.RpcError as exc:
            code = exc.code()
            if code in RETRYABLE:
                return Answer(retry=code.name)
            return Answer(failure=f"{code.name}: {exc.details()}")
        return Answer(rejected=response.partial_success.rejected_spans)

    def close(self) -> None:
        self._channel.close()


class HttpSender:
    def __init__(self, cfg: WorkerConfig) -> None:
        host, _, port = cfg.target.rpartition(":")
        self._conn = http.client.HTTPConnection(host, int(port), timeout=RPC_TIMEOUT_S)
        self._json = cfg.transport == "http-json"
        media = "application/json" if self._json else "application/x-protobuf"
        self._headers = {"Content-Type": media, **({"Authorization": f"Bearer {cfg.key}"} if cfg.key else {})}

    def send(self, data: bytes) -> Answer:
        self._conn.request("POST", "/v1/traces", body=data, headers=self._headers)
        response = self._conn.getresponse()
        body = response.read()
        if response.status in HTTP_RETRYABLE:
            return Answer(retry=f"HTTP {response.status}")
        if response.status != 200:
            return Answer(failure=f"HTTP {response.status}: {body[:200]!r}")
        if self._json:
            return Answer(rejected=int(json.loads(body).get("partialSuccess", {}).get("rejectedSpans", 0)))
        return Answer(rejected=ExportTraceServiceResponse.FromString(body).partial_success.rejected_spans)

    def close(self) -> None:
        self._conn.close()


def _send_loop(
    cfg: WorkerConfig, thread: int, templates: list[RequestTemplate], deadline: float, out: WorkerResult
) -> None:
    sender = GrpcSender(cfg) if cfg.transport == "grpc" else HttpSender(cfg)
    rng = random.Random(cfg.seed * 1000 + thread)
    seq = 0
    i = thread % len(templates)
    try:
        while time.monotonic() < deadline:
            seq += 1
            stamp = (cfg.index << 56) | (thread << 44) | seq
            template = templates[i]
            i = (i + 1) % len(templates)
            _send_one(
                sender, template.render(stamp), template.spans, rng, out, stamp, len(template.trace_tails)
            )
    except Exception as exc:  # recorded, so the run fails loudly instead of undercounting
        out.failures.append(f"sender thread {thread} crashed: {exc!r}")
    finally:
        sender.close()


def _send_one(
    sender: GrpcSender | HttpSender,
    data: bytes,
    spans: int,
    rng: random.Random,
    out: WorkerResult,
    stamp: int = 0,
    traces: int = 0,
) -> None:
    for attempt in range(MAX_ATTEMPTS):
        started = time.monotonic()
        answer = sender.send(data)
        if answer.retry:
            out.retries += 1
            out.retry_codes[answer.retry] += 1
            time.sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + rng.random()))
            continue
        if answer.failure:
            out.failures.append(answer.failure)
            return
        done = time.monotonic()
        out.requests_ok += 1
        out.acked_spans += spans - answer.rejected
        out.rejected_spans += answer.rejected
        out.latencies_ms.append((done - started) * 1000)
        out.last_ack = done
        out.acks.append((stamp, done, traces))
        return
    out.failures.append(f"gave up after {MAX_ATTEMPTS} retryable errors")


def worker_main(cfg: WorkerConfig, ready: Any, go: Event, deadline: Any, results: Any) -> None:
    """Process entry: build templates, report ready, wait for `go`, send until `deadline`."""
    try:
        rng = random.Random(cfg.seed)
        templates = [RequestTemplate.build(rng, cfg.spans_per_request) for _ in range(cfg.templates)]
        if cfg.transport == "http-json":
            templates = [t.as_json() for t in templates]
    except Exception as exc:  # report instead of leaving the parent waiting
        ready.put((cfg.index, f"building requests failed: {exc!r}"))
        return
    ready.put((cfg.index, ""))
    go.wait()
    cpu_before = time.process_time()
    end = deadline.value
    per_thread = [WorkerResult() for _ in range(cfg.threads)]
    threads = [
        threading.Thread(target=_send_loop, args=(cfg, t, templates, end, per_thread[t]), daemon=True)
        for t in range(cfg.threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = WorkerResult()
    for r in per_thread:
        total.merge(r)
    total.cpu_s = time.process_time() - cpu_before
    results.put(total)
