"""Redaction benchmark: µs per span of the redaction step alone, on the ingest benchmark's requests.

    python -m bench.redaction [--requests 20] [--spans 1000] [--repeat 5] [--out result.json]

Each request of bench.workload is parsed and encoded canonically, as the receiver does before it
redacts (receiver.parse, receiver.screen); then `redaction.otlp.redact_request` runs on it with
one tenant's rules, timed alone. When it changed something, the receiver encodes the request
again: that is timed apart ("re-encode"). Parsing and encoding are reported per span too, for
scale. Cases:

  clean        the default policy on the workload as generated (nothing to redact)
  one secret   the default policy; one span per request carries an API key in a prompt
  every span   the default policy; every span has an `http.request.header.authorization`
  off          every built-in detector off and no rules (nothing is read)
  anchored     the default policy and an operator's anchored pattern (`^ord-[0-9]{8}$`), which
               cannot be sought in the raw bytes, so every span is read

Every request is parsed afresh before each timed call (redaction works in place). The figures
are the median over requests × repeats of each request's time divided by its spans.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from bench.workload import build_request
from redaction.book import tenant_hash_key
from redaction.detectors import DETECTORS
from redaction.otlp import REDACTED_ATTRIBUTE, redact_request
from redaction.policy import Policy, Rule, effective
from redaction.redactor import Redactor

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _token(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(n))


def _one_secret(rng: random.Random, request: ExportTraceServiceRequest) -> None:
    """An API key appended to the longest text attribute of one span, chosen at random."""
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    span = rng.choice(spans)
    texts = [kv for kv in span.attributes if kv.value.WhichOneof("value") == "string_value"]
    kv = max(texts, key=lambda kv: len(kv.value.string_value))
    kv.value.string_value += f" (with api key sk-proj-{_token(rng, 40)})"


def _every_span(rng: random.Random, request: ExportTraceServiceRequest) -> None:
    """An authorization header on every span."""
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                value = AnyValue(string_value=f"Bearer {_token(rng, 32)}")
                span.attributes.append(KeyValue(key="http.request.header.authorization", value=value))


Change = Callable[[random.Random, ExportTraceServiceRequest], None] | None
CASES: tuple[tuple[str, Policy, Change], ...] = (
    ("clean", Policy(), None),
    ("one secret", Policy(), _one_secret),
    ("every span", Policy(), _every_span),
    ("off", Policy(detectors={d.name: "off" for d in DETECTORS}), None),
    ("anchored", Policy(rules=[Rule(name="order_id", pattern=r"^ord-[0-9]{8}$")]), None),
)


def _requests(seed: int, count: int, spans: int, change: Change) -> list[bytes]:
    rng = random.Random(seed)
    out: list[bytes] = []
    for _ in range(count):
        data, _ = build_request(rng, spans)
        if change is not None:
            request = ExportTraceServiceRequest.FromString(data)
            change(rng, request)
            data = request.SerializeToString()
        out.append(data)
    return out


def _recorded(request: ExportTraceServiceRequest) -> tuple[int, int]:
    """(spans that record `wrm.redacted`, values they count)."""
    spans = values = 0
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                for kv in span.attributes:
                    if kv.key == REDACTED_ATTRIBUTE:
                        spans += 1
                        values += sum(json.loads(kv.value.string_value).values())
    return spans, values


def _case(name: str, policy: Policy, datas: list[bytes], repeat: int) -> dict[str, Any]:
    redactor = Redactor(effective(policy), tenant_hash_key(b"\0" * 32, "bench"), "bench")

    def redactor_for(_: Any) -> Redactor:
        return redactor

    parse: list[float] = []
    encode: list[float] = []
    redact: list[float] = []
    again: list[float] = []
    changed = redacted_spans = redacted_values = 0
    for _ in range(repeat):
        for data in datas:
            t0 = time.perf_counter()
            request = ExportTraceServiceRequest.FromString(data)
            t1 = time.perf_counter()
            request.DiscardUnknownFields()
            payload = request.SerializeToString()
            t2 = time.perf_counter()
            hit = redact_request(request, payload, redactor_for)
            t3 = time.perf_counter()
            n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
            parse.append((t1 - t0) / n)
            encode.append((t2 - t1) / n)
            redact.append((t3 - t2) / n)
            if hit:
                t4 = time.perf_counter()
                request.SerializeToString()
                again.append((time.perf_counter() - t4) / n)
                changed += 1
            found = _recorded(request)
            redacted_spans += found[0]
            redacted_values += found[1]

    def us(values: list[float]) -> float:
        return round(statistics.median(values) * 1e6, 2) if values else 0.0

    runs = repeat * len(datas)
    return {
        "case": name,
        "redact_us_per_span": us(redact),
        "redact_us_per_span_p90": round(sorted(redact)[int(0.9 * (len(redact) - 1))] * 1e6, 2),
        "reencode_us_per_span": us(again),
        "parse_us_per_span": us(parse),
        "encode_us_per_span": us(encode),
        "requests_changed": changed // repeat,
        "requests": len(datas),
        "redacted_spans_per_request": round(redacted_spans / runs, 1),
        "redacted_values_per_request": round(redacted_values / runs, 1),
        "always": redactor.always,
        "inert": redactor.inert,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.redaction", description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=20, help="distinct requests per case (default 20)")
    p.add_argument("--spans", type=int, default=1000, help="spans per request (default 1000)")
    p.add_argument("--repeat", type=int, default=5, help="times each request is redacted (default 5)")
    p.add_argument("--seed", type=int, default=1, help="seed for the generated traces")
    p.add_argument("--out", metavar="FILE", help="also write the JSON results here")
    args = p.parse_args(argv)
    if args.requests < 1 or args.spans < 2 or args.repeat < 1:
        print("bench: --requests/--repeat must be positive, --spans ≥ 2", file=sys.stderr)
        return 2
    results = []
    print(
        f"{args.requests} requests of {args.spans} spans, each redacted {args.repeat} times; "
        "µs per span, median (p90)"
    )
    head = ("case", "redact", "re-encode", "changed", "spans/req", "values/req")
    print("{:<12} {:>15} {:>10} {:>8} {:>10} {:>11}".format(*head))
    for name, policy, change in CASES:
        datas = _requests(args.seed, args.requests, args.spans, change)
        r = _case(name, policy, datas, args.repeat)
        results.append(r)
        print(
            f"{name:<12} {r['redact_us_per_span']:>6.2f} ({r['redact_us_per_span_p90']:>6.2f}) "
            f"{r['reencode_us_per_span']:>10.2f} {r['requests_changed']:>4}/{r['requests']:<3} "
            f"{r['redacted_spans_per_request']:>10} {r['redacted_values_per_request']:>11}",
            flush=True,
        )
    parse = statistics.median(r["parse_us_per_span"] for r in results)
    encode = statistics.median(r["encode_us_per_span"] for r in results)
    print(f"for scale: parse {parse:.2f} µs/span, canonical encode {encode:.2f} µs/span")
    line = json.dumps({"spans_per_request": args.spans, "cases": results}, sort_keys=True)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
