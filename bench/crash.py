"""Crash benchmark: `wrm serve` killed with SIGKILL under load, restarted on the same data.

Senders keep whole workflow traces flowing (each request holds complete traces: a root span and
its steps, every step a direct child of the root) and retry every request until it is
acknowledged, as an OTLP exporter would, following the server to its new port after a restart.
After the last restart the load stops and the check waits for the running server — not a clean
shutdown, which would assemble everything itself — to make every trace a run:

    acknowledged spans = stored spans, and every acknowledged trace is a run exactly once
    with one step per non-root span; nothing acknowledged is lost by a kill.

    .venv/bin/python -m bench.crash --cycles 20
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from bench.server import WrmProcess
from bench.workload import RequestTemplate

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED}
)


@dataclass
class Load:
    """What the senders acknowledged, and where the server is now."""

    target: str
    acked_spans: int = 0
    acked_requests: int = 0
    acked_traces: set[bytes] = field(default_factory=set)
    retries: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def retarget(self, target: str) -> None:
        with self.lock:
            self.target = target


@dataclass(frozen=True)
class Verdict:
    cycles: int
    acked_spans: int
    stored_spans: int
    acked_traces: int
    stored_traces: int
    runs: int
    duplicate_runs: int
    traces_without_run: int
    wrong_step_counts: int
    summarized_runs: int
    settle_s: float
    retries: int
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return (
            not self.failures
            and self.acked_spans == self.stored_spans
            and self.acked_traces == self.stored_traces == self.runs
            and self.duplicate_runs == 0
            and self.traces_without_run == 0
            and self.wrong_step_counts == 0
            and self.summarized_runs == self.runs
        )

    def lines(self) -> list[str]:
        return [
            f"kill/restart cycles:        {self.cycles}",
            f"acknowledged spans:         {self.acked_spans}",
            f"stored spans:               {self.stored_spans}",
            f"acknowledged traces:        {self.acked_traces}",
            f"stored traces:              {self.stored_traces}",
            f"runs:                       {self.runs}",
            f"duplicate runs:             {self.duplicate_runs}",
            f"traces without a run:       {self.traces_without_run}",
            f"runs with wrong step count: {self.wrong_step_counts}",
            f"runs in the summary tier:   {self.summarized_runs}",
            f"settled after restart in:   {self.settle_s:.1f} s",
            f"retried requests:           {self.retries}",
            *(f"FAILURE: {f}" for f in self.failures),
        ]


def _sender(load: Load, templates: list[tuple[RequestTemplate, list[bytes]]], seed: int) -> None:
    """Send fresh traces until told to stop; every request is retried until acknowledged."""
    rng = random.Random(seed)
    seq = 0
    channel, target = None, ""
    try:
        while not load.stop.is_set():
            seq += 1
            stamp = (seed << 40) | seq
            template, tails = templates[seq % len(templates)]
            data = template.render(stamp)
            prefix = stamp.to_bytes(8, "big")
            for _attempt in range(2000):
                with load.lock:
                    current = load.target
                if current != target or channel is None:
                    if channel is not None:
                        channel.close()
                    channel, target = grpc.insecure_channel(current), current
                export: grpc.UnaryUnaryMultiCallable[bytes, ExportTraceServiceResponse] = channel.unary_unary(
                    EXPORT, response_deserializer=ExportTraceServiceResponse.FromString
                )
                try:
                    response = export(data, timeout=30)
                except grpc.RpcError as exc:
                    if exc.code() not in RETRYABLE:
                        load.failures.append(f"{exc.code().name}: {exc.details()}")
                        return
                    with load.lock:
                        load.retries += 1
                    time.sleep(0.05 + 0.2 * rng.random())
                    continue
                with load.lock:
                    load.acked_requests += 1
                    load.acked_spans += template.spans - response.partial_success.rejected_spans
                    load.acked_traces.update(prefix + tail for tail in tails)
                break
            else:
                load.failures.append("a request was never acknowledged")
                return
    finally:
        if channel is not None:
            channel.close()


def _count(server: WrmProcess, sql: str) -> list[int]:
    return [int(x) for x in server.sql(sql).split()]


def _settle(server: WrmProcess, acked_traces: int, timeout_s: float) -> float:
    """Seconds until the running server has a run for as many traces as were acknowledged, and
    the summary tier counts them all (it refreshes every summary interval, 10 s by default)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        runs, summarized = _count(
            server, "SELECT (SELECT count() FROM runs), (SELECT sum(runs) FROM effectiveness)"
        )
        if runs >= acked_traces and summarized >= acked_traces:
            return time.monotonic() - started
        time.sleep(0.25)
    return time.monotonic() - started


def run(
    data: Path,
    cycles: int,
    *,
    senders: int = 4,
    spans_per_request: int = 1000,
    kill_after_s: tuple[float, float] = (2.0, 6.0),
    settle_timeout_s: float = 60.0,
    seed: int = 7,
    log_dir: Path | None = None,
    ack: str = "stored",
) -> Verdict:
    """`ack`: the servers' ingest_ack; with "spooled", what was acknowledged and not yet stored
    is in the spool when the kill comes, and the restarted server must store it."""
    rng = random.Random(seed)
    templates = []
    for _ in range(4):
        template = RequestTemplate.build(rng, spans_per_request)
        templates.append((template, list(template.trace_tails)))
    logs = log_dir or data
    env = {"WRM_INGEST_ACK": ack}
    server = WrmProcess(data, 0, logs / "serve-0.log", env=env)
    server.wait_ready()
    load = Load(server.otlp)
    threads = [
        threading.Thread(target=_sender, args=(load, templates, i + 1), name=f"sender-{i}", daemon=True)
        for i in range(senders)
    ]
    for t in threads:
        t.start()
    for cycle in range(1, cycles + 1):
        time.sleep(rng.uniform(*kill_after_s))
        if cycle == cycles:
            # The last kill comes right after the load stops, before the server has derived
            # what it acknowledged: the restart must find that work by itself.
            load.stop.set()
            for t in threads:
                t.join(120)
        server.kill()
        server = WrmProcess(data, 0, logs / f"serve-{cycle}.log", env=env)
        server.wait_ready()
        load.retarget(server.otlp)
    try:
        settle_s = _settle(server, len(load.acked_traces), settle_timeout_s)
        (stored_spans,) = _count(server, "SELECT count() FROM spans FINAL")
        (stored_traces,) = _count(server, "SELECT uniqExact(tenant_id, trace_id) FROM spans")
        runs, duplicates, wrong = _count(
            server,
            "SELECT count(), count() - uniqExact(tenant_id, trace_id), countIf(step_count != span_count - 1) "
            "FROM runs",
        )
        (summarized,) = _count(server, "SELECT sum(runs) FROM effectiveness")
        (without,) = _count(
            server,
            "SELECT count() FROM (SELECT DISTINCT tenant_id, trace_id FROM spans) AS s "
            "LEFT ANTI JOIN (SELECT tenant_id, trace_id FROM runs) AS r USING (tenant_id, trace_id)",
        )
    finally:
        server.stop()
    return Verdict(
        cycles=cycles,
        acked_spans=load.acked_spans,
        stored_spans=stored_spans,
        acked_traces=len(load.acked_traces),
        stored_traces=stored_traces,
        runs=runs,
        duplicate_runs=duplicates,
        traces_without_run=without,
        wrong_step_counts=wrong,
        summarized_runs=summarized,
        settle_s=settle_s,
        retries=load.retries,
        failures=tuple(load.failures),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--senders", type=int, default=4, help="requests in flight")
    parser.add_argument("--spans-per-request", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--ack", choices=("stored", "spooled"), default="stored", help="the server's ingest_ack"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wrm-crash-") as tmp:
        started = time.monotonic()
        verdict = run(
            Path(tmp) / "data",
            args.cycles,
            senders=args.senders,
            spans_per_request=args.spans_per_request,
            seed=args.seed,
            log_dir=Path(tmp),
            ack=args.ack,
        )
        print("\n".join(verdict.lines()))
        print(f"wall time:                  {time.monotonic() - started:.0f} s")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
