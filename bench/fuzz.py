"""OTLP fuzzing against a real server: mutated requests over real gRPC, every answer checked.

    python -m bench.fuzz --payloads 20000 [--seed 1] [--in-flight 16]

Starts `wrm serve` in this process on a fresh embedded warehouse, sends payloads from
bench.fuzz_payloads, and checks: every answer is OK (perhaps with partial_success) or
INVALID_ARGUMENT, never a retryable code for a request that would fail the same way again;
INVALID_ARGUMENT exactly when the receiver's parser refuses the bytes; the distinct spans stored
equal, over OK answers, the valid spans the parser saw minus those the engine refused (counted
in a window of start times the spans TTL certainly keeps); afterwards `/healthz` is 200 and a
normal request is stored. The exit status is non-zero when any check fails.
tests/test_fuzz_otlp.py runs the same at a smaller size.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from bench.fuzz_payloads import Payload, payloads
from receiver.parse import MalformedRequest, parse_request
from receiver.screen import screen_request
from warehouse import Warehouse

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
ALLOWED = frozenset({"OK", "INVALID_ARGUMENT"})


@dataclass(frozen=True)
class Answer:
    """One payload's answer and what the receiver's own parser and screen make of its bytes."""

    code: str  # grpc.StatusCode name
    rejected: int  # partial_success.rejected_spans (OK answers)
    parsed: int | None  # spans in the parsed request; None when the parser refuses the bytes
    valid: tuple[tuple[bytes, bytes, int], ...]  # (trace id, span id, start ns) of valid spans
    kinds: tuple[str, ...]
    detail: str


@dataclass
class Report:
    answers: list[Answer]
    seconds: float
    stored: int = 0
    expected_stored: int = 0
    outside_window: int = 0
    refused_by_engine: int = 0
    problems: list[str] = field(default_factory=list)

    def codes(self) -> Counter[str]:
        return Counter(a.code for a in self.answers)

    def summary(self) -> dict[str, object]:
        ok = [a for a in self.answers if a.code == "OK"]
        return {
            "payloads": len(self.answers),
            "seconds": round(self.seconds, 1),
            "payloads_per_s": round(len(self.answers) / self.seconds, 1) if self.seconds else 0,
            "answers": dict(self.codes()),
            "ok_with_partial_success": sum(1 for a in ok if a.rejected),
            "ok_spans_seen": sum(a.parsed or 0 for a in ok),
            "spans_rejected": sum(a.rejected for a in ok),
            "spans_refused_by_engine": self.refused_by_engine,
            "valid_spans_outside_window": self.outside_window,
            "spans_expected": self.expected_stored,
            "spans_stored": self.stored,
            "problems": self.problems[:20],
        }


def _expect(data: bytes) -> tuple[int | None, tuple[tuple[bytes, bytes, int], ...]]:
    try:
        request, _ = parse_request(data)
    except MalformedRequest:
        return None, ()
    parsed = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    screen_request(request)  # drops invalid spans from `request`
    spans = (s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans)
    return parsed, tuple((s.trace_id, s.span_id, s.start_time_unix_nano) for s in spans)


def send_all(otlp_address: str, items: Iterable[Payload], in_flight: int = 16) -> Report:
    """Send every payload with real gRPC, `in_flight` at a time, and record each answer."""
    with grpc.insecure_channel(otlp_address) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, ExportTraceServiceResponse] = channel.unary_unary(
            EXPORT_METHOD, response_deserializer=ExportTraceServiceResponse.FromString
        )

        def one(p: Payload) -> Answer:
            parsed, starts = _expect(p.data)
            try:
                response = call(p.data, timeout=120)
                return Answer("OK", response.partial_success.rejected_spans, parsed, starts, p.kinds, "")
            except grpc.RpcError as exc:
                return Answer(exc.code().name, 0, parsed, starts, p.kinds, str(exc.details())[:300])

        started = time.perf_counter()
        with ThreadPoolExecutor(in_flight, thread_name_prefix="fuzz") as pool:
            answers = list(pool.map(one, items))
    return Report(answers, time.perf_counter() - started)


# Spans are counted inside a window that the spans TTL (FUZZ_TTL_DAYS) certainly keeps: mutated
# times far in the past or past 2106 (where DateTime, and so the TTL expression, ends) may be
# dropped by the engine at insert, which is retention, not loss.
FUZZ_TTL_DAYS = 3650
_DAY_NS = 86_400 * 10**9
_WINDOW_HI_NS = 4_102_444_800 * 10**9  # 2100-01-01


def check(report: Report, warehouse: Warehouse, now_ns: int) -> Report:
    """Fill in the stored and expected counts and list every broken promise in `problems`.

    The server must run with spans_ttl_days = FUZZ_TTL_DAYS."""
    lo = now_ns - (FUZZ_TTL_DAYS - 600) * _DAY_NS
    for i, a in enumerate(report.answers):
        if a.code not in ALLOWED:
            report.problems.append(f"payload {i} {a.kinds}: {a.code} {a.detail}")
        elif (a.code == "INVALID_ARGUMENT") != (a.parsed is None):
            report.problems.append(f"payload {i} {a.kinds}: {a.code} but parser saw {a.parsed} spans")
        elif a.code == "OK" and a.parsed is not None and a.rejected < a.parsed - len(a.valid):
            report.problems.append(f"payload {i}: {a.rejected} rejected, fewer than the invalid spans")
    # Spans are told apart by (trace id, span id, start): a span sent twice, in one request or
    # two, is one span (the engine collapses such rows, at insert or in merges).
    keys: set[tuple[bytes, bytes, int]] = set()
    refused_by_engine = outside = 0
    for a in report.answers:
        if a.code == "OK" and a.parsed is not None:
            keys.update(k for k in a.valid if lo < k[2] < _WINDOW_HI_NS)
            outside += sum(1 for k in a.valid if not lo < k[2] < _WINDOW_HI_NS)
            refused_by_engine += a.rejected - (a.parsed - len(a.valid))
    report.outside_window = outside
    report.refused_by_engine = refused_by_engine
    report.expected_stored = len(keys) - refused_by_engine
    report.stored = int(
        warehouse.rows(
            "SELECT count() FROM (SELECT DISTINCT trace_id, span_id, start_time FROM spans"
            " WHERE start_time > fromUnixTimestamp64Nano({lo:Int64}, 'UTC')"
            " AND start_time < fromUnixTimestamp64Nano({hi:Int64}, 'UTC'))",
            {"lo": lo, "hi": _WINDOW_HI_NS},
        )[0][0]
    )
    if report.stored != report.expected_stored:
        report.problems.append(f"stored {report.stored} spans, expected {report.expected_stored}")
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.splitlines()[0])
    p.add_argument("--payloads", type=int, default=20_000, help="how many mutated requests (20000)")
    p.add_argument("--seed", type=int, default=1, help="RNG seed (1)")
    p.add_argument("--in-flight", type=int, default=16, help="requests in flight (16)")
    p.add_argument("--out", metavar="FILE", help="also write the JSON summary here")
    args = p.parse_args(argv)

    from tests.otlp import make_span, request_of, send_raw
    from wrm.server import WrmServer
    from wrm.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="wrm-fuzz-") as tmp:
        warehouse = Warehouse.open(f"chdb://{tmp}", "wrm")
        settings = load_settings(
            otlp_grpc="127.0.0.1:0",
            otlp_http="127.0.0.1:0",
            http="127.0.0.1:0",
            database="wrm",
            stats_log_interval_s=0,
            spans_ttl_days=FUZZ_TTL_DAYS,
        )
        server = WrmServer(settings, warehouse=warehouse)
        server.start()
        try:
            now = time.time_ns()
            report = send_all(server.otlp_address, payloads(args.seed, args.payloads, now), args.in_flight)
            check(report, warehouse, now)
            with urllib.request.urlopen(f"http://{server.http_address}/healthz", timeout=10) as resp:
                if resp.status != 200:
                    report.problems.append(f"/healthz answered {resp.status}")
            send_raw(server.otlp_address, request_of([make_span("after-fuzz")]))
            if warehouse.rows("SELECT count() FROM spans WHERE name = 'after-fuzz'")[0][0] != 1:
                report.problems.append("a normal request after the fuzzing was not stored")
        finally:
            server.stop()
            warehouse.close()
    summary = report.summary()
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
