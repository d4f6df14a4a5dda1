"""Ingest benchmark: OTLP load against a real `wrm serve`, then check nothing was lost.

    python -m bench.ingest --seconds 30 [--procs 2 --threads 4] [--auth] [--transport grpc|http|http-json]
                           [--out result.json]

Starts `wrm serve` on a fresh embedded warehouse, drives it from separate load processes with
pre-serialized 1,000-span requests, and reports acknowledged spans/s, request latency, retries
and the server's peak RSS. After the load it counts the stored rows through the server's SQL
endpoint (`FINAL`, so only distinct spans count) and SIGTERMs the server. The exit status is
non-zero when stored != acknowledged, a request failed for good, or the server did not exit 0;
falling short of the throughput/RSS targets is reported but does not fail the run.

`--transport` picks OTLP/gRPC (default), OTLP/HTTP with protobuf bodies (`http`) or with the
OTLP JSON encoding (`http-json`), on the same requests, so the transports compare like for like.

`--auth` runs the same load with API keys required: an `ingest` key, made before the server
starts, goes with every request, so the figures show what authentication costs ingest.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import queue
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

from bench.loadgen import WorkerConfig, WorkerResult, worker_main
from bench.server import ServerError, WrmProcess, create_key

TARGET_SPANS_PER_S = 50_000
TARGET_RSS_BYTES = 1 << 30


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="how long to send (default 30)")
    p.add_argument("--procs", type=int, default=2, help="load-generator processes (default 2)")
    p.add_argument("--threads", type=int, default=4, help="sending threads per process (default 4)")
    p.add_argument("--pool", type=int, default=50, help="distinct requests built up front, in total (50)")
    p.add_argument("--spans", type=int, default=1000, help="spans per request (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="seed for the generated traces")
    p.add_argument("--stats-interval", type=float, default=5.0, help="server counter log period, s")
    p.add_argument("--auth", action="store_true", help="require API keys; an ingest key on every request")
    p.add_argument(
        "--transport", choices=("grpc", "http", "http-json"), default="grpc", help="OTLP transport (grpc)"
    )
    p.add_argument(
        "--ack", choices=("stored", "spooled"), default="stored",
        help="the server's ingest_ack: answer once stored (default) or once spooled",
    )  # fmt: skip
    p.add_argument("--out", metavar="FILE", help="also write the JSON summary here")
    p.add_argument("--src", metavar="DIR", help="run the server from this source tree (e.g. a git archive)")
    p.add_argument("--keep", action="store_true", help="keep the warehouse and server log (temp dir)")
    p.add_argument("--py-spy", metavar="FILE", help="profile the server during the load (.svg, .json or raw)")
    p.add_argument("--py-spy-args", default="", help="extra py-spy record flags, e.g. '--native --gil'")
    return p


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def _machine_busy_s() -> float:
    """CPU seconds all processes have used since boot (every core, idle and iowait excluded)."""
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _drive(
    args: argparse.Namespace, target: str, on_start: Callable[[], None], key: str = ""
) -> tuple[WorkerResult, float, float]:
    """Run the load processes; returns their merged result, the start time and the load's end."""
    ctx = mp.get_context("spawn")  # gRPC and fork do not mix; spawn starts each worker clean
    ready: Any = ctx.Queue()
    results: Any = ctx.Queue()
    go = ctx.Event()
    deadline = ctx.Value("d", 0.0)
    per_proc = max(1, args.pool // args.procs)
    procs = []
    for i in range(args.procs):
        cfg = WorkerConfig(
            i + 1, target, args.threads, per_proc, args.spans, args.seed * 100 + i, key, args.transport
        )
        proc = ctx.Process(target=worker_main, args=(cfg, ready, go, deadline, results), daemon=True)
        proc.start()
        procs.append(proc)
    try:
        for _ in procs:
            index, problem = ready.get(timeout=300)
            if problem:
                raise RuntimeError(f"load process {index}: {problem}")
        on_start()
        started = time.monotonic()
        deadline.value = started + args.seconds
        go.set()
        total = WorkerResult()
        pending = len(procs)
        give_up = started + args.seconds + 600
        while pending:
            # A process that died without reporting must not leave us waiting for the full timeout;
            # one that reported just before exiting still has its result in the queue.
            stalled = time.monotonic() > give_up or not any(p.is_alive() for p in procs)
            try:
                total.merge(results.get(timeout=5 if stalled else 1))
                pending -= 1
            except queue.Empty:
                if stalled:
                    raise RuntimeError(f"{pending} load process(es) died or did not report") from None
        ended = total.last_ack or time.monotonic()
    except queue.Empty:
        raise RuntimeError("a load process did not report in time") from None
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
    return total, started, ended


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="wrm-bench-"))
    src = Path(args.src) if args.src else None
    key = admin_key = ""
    if args.auth:  # the key is made on the warehouse before the server opens it
        key = create_key(tmp / "warehouse", "bench", "ingest", "bench-loadgen")
        admin_key = secrets.token_hex(32)  # reads the stored count through the SQL endpoint
    server = WrmProcess(
        tmp / "warehouse", args.stats_interval, tmp / "server.log", src, admin_key or None,
        env={"WRM_INGEST_ACK": args.ack} if args.ack != "stored" else None,  # --src of older code
    )  # fmt: skip
    exit_code: int | None = None
    try:
        print(server.wait_ready(), flush=True)
        idle_rss = server.rss()
        print(
            f"load: {args.transport}, {args.procs} procs × {args.threads} threads, "
            f"{args.pool} requests of {args.spans} spans, "
            f"{args.seconds:g} s",
            flush=True,
        )
        spy: list[subprocess.Popen[bytes]] = []
        before: list[float] = []

        def on_start() -> None:  # workers have built their requests: only the load is measured
            before.extend((server.cpu_seconds(), _machine_busy_s()))
            if args.py_spy:
                spy.append(server.profile(Path(args.py_spy), args.seconds, shlex.split(args.py_spy_args)))

        target = server.otlp if args.transport == "grpc" else server.otlp_http
        load, started, ended = _drive(args, target, on_start, key)
        cpu_used, busy = server.cpu_seconds() - before[0], _machine_busy_s() - before[1]
        for p in spy:
            _, err = p.communicate(timeout=120)
            if p.returncode:
                print(f"py-spy failed: {err.decode(errors='replace').strip()}", file=sys.stderr)
        elapsed = ended - started
        stored, drain_s = server.wait_stored(load.acked_spans)
        assembled_s = server.wait_assembled()
        metrics = server.metrics()
        exit_code = server.stop()
    except BaseException:
        if exit_code is None:
            server.stop(10)
        print(f"server log ({tmp / 'server.log'}):\n{server.stderr_tail()}", file=sys.stderr)
        raise
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    rate = load.acked_spans / elapsed if elapsed > 0 else 0.0
    # Acknowledged is not the end: with ingest_ack = spooled rows land after the answer, so the
    # sustained figure is the spans acknowledged over the time until every one of them was stored.
    stored_rate = load.acked_spans / (elapsed + drain_s) if elapsed > 0 else 0.0
    flushes = int(metrics.get("wrm_flush_seconds_count", 0))
    summary: dict[str, Any] = {
        "auth": bool(args.auth),
        "transport": args.transport,
        "seconds": round(elapsed, 2),
        "procs": args.procs,
        "threads": args.threads,
        "spans_per_request": args.spans,
        "requests_ok": load.requests_ok,
        "acked_spans": load.acked_spans,
        "ack": args.ack,
        "spans_per_s": round(rate),
        "stored_spans_per_s": round(stored_rate),
        "stored_after_load_s": round(drain_s, 2),
        # from the last answer until every run is current: the assembly lag at this rate
        "runs_current_after_load_s": round(drain_s + assembled_s, 2),
        "p50_ms": round(percentile(load.latencies_ms, 50), 1),
        "p99_ms": round(percentile(load.latencies_ms, 99), 1),
        "retries": load.retries,
        "retry_codes": dict(load.retry_codes),
        "rejected_spans": load.rejected_spans,
        "failed_requests": len(load.failures),
        "stored_spans": stored,
        "server_accepted_metric": int(metrics.get("wrm_spans_accepted_total", -1)),
        "server_flushes": flushes,
        "server_flush_ms_mean": round(1000 * metrics.get("wrm_flush_seconds_sum", 0) / flushes, 1)
        if flushes
        else 0,
        "server_idle_rss_mib": round(idle_rss / 2**20, 1),
        "server_peak_rss_mib": round(server.peak_rss / 2**20, 1),
        "server_cpu_cores": round(cpu_used / elapsed, 2) if elapsed > 0 else 0.0,
        "client_cpu_cores": round(load.cpu_s / elapsed, 2) if elapsed > 0 else 0.0,
        # CPU the rest of the machine used meanwhile: anything well above 0 skews the figures
        "other_cpu_cores": round(max(0.0, busy - cpu_used - load.cpu_s) / elapsed, 2) if elapsed > 0 else 0.0,
        "server_exit": exit_code,
        "stored_equals_acked": stored == load.acked_spans,
        "target_met": stored_rate >= TARGET_SPANS_PER_S and server.peak_rss < TARGET_RSS_BYTES,
    }
    if load.failures:
        print(f"failed requests, first: {load.failures[0]}", file=sys.stderr)
    if args.keep:
        print(f"kept {tmp}", file=sys.stderr)
    return summary


def _report(s: dict[str, Any]) -> None:
    print(
        f"acknowledged {s['acked_spans']:,} spans in {s['seconds']} s = {s['spans_per_s']:,} spans/s "
        f"({s['requests_ok']:,} requests{', each with an ingest key' if s['auth'] else ''}; ack {s['ack']})\n"
        f"all stored {s['stored_after_load_s']} s after the load: {s['stored_spans_per_s']:,} spans/s "
        f"acknowledged and stored; every run current {s['runs_current_after_load_s']} s after the load\n"
        f"latency p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms; "
        f"retries {s['retries']} {s['retry_codes'] or ''}\n"
        f"stored {s['stored_spans']:,} (server counter {s['server_accepted_metric']}), "
        f"rejected {s['rejected_spans']}, failed requests {s['failed_requests']}\n"
        f"server: {s['server_flushes']} inserts, {s['server_flush_ms_mean']} ms each on average\n"
        f"server RSS idle {s['server_idle_rss_mib']} MiB, peak {s['server_peak_rss_mib']} MiB, "
        f"CPU {s['server_cpu_cores']} cores, "
        f"exit {s['server_exit']}; load generator CPU {s['client_cpu_cores']} cores; "
        f"other processes {s['other_cpu_cores']} cores\n"
        f"target ≥{TARGET_SPANS_PER_S:,} spans/s and RSS < 1 GiB: {'met' if s['target_met'] else 'NOT met'}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.seconds <= 0 or args.procs < 1 or args.threads < 1 or args.spans < 2 or args.pool < 1:
        print("bench: --seconds/--procs/--threads/--pool must be positive, --spans ≥ 2", file=sys.stderr)
        return 2
    try:
        summary = run(args)
    except (ServerError, RuntimeError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    _report(summary)
    line = json.dumps(summary, sort_keys=True)
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n")
    ok = summary["stored_equals_acked"] and summary["server_exit"] == 0 and not summary["failed_requests"]
    if not ok:
        print(
            "bench: FAILED (stored != acknowledged, a request failed, or the server exit was not 0)",
            file=sys.stderr,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
