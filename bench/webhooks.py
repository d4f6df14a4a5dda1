"""Webhook benchmark: ingest spans/s with webhook subscriptions against none; ack → webhook latency.

Ingest throughput with lifecycle-webhook subscriptions against none, and the latency from a span's
acknowledgement to its run's webhook arriving.

    python -m bench.webhooks [--duration 30] [--subscriptions 3] [--events SPEC ...] [--rounds 1]
                             [--drain-timeout 60] [--json FILE]

Each phase starts its own `wrm serve` (bench/server.py) on a fresh warehouse and drives it with
the load of bench.ingest: the same pre-serialized 1,000-span workflow requests (bench.workload),
2 load processes × 4 threads, so 8 requests in flight. Both phases run the server with
WRM_WEBHOOKS_ALLOW_PRIVATE=true (the receiver listens on 127.0.0.1) and otherwise its defaults
(assembly every 1,000 ms, dispatcher poll 250 ms), so they differ only in the subscriptions.

1. Baseline: no subscription. Acknowledged spans/s, and stored = acknowledged as bench.ingest checks.
2. With subscriptions, created through POST /v1/webhooks before the load, to an HTTP receiver in
   this process (ThreadingHTTPServer, HTTP/1.1 keep-alive, answers 200 at once). By default the
   three a user would set up: `all` (["*"]: an audit log or event store), `runs` (["run.*"]: a
   run dashboard or chat-ops channel) and `outcomes` (["run.completed", "run.failed"]: the
   downstream job that acts on a finished run). `--events` replaces them, one SPEC per
   subscription (comma-separated types, e.g. `--events '*' --events run.completed,run.failed`).
3. Latency: each load thread records, per acknowledged request, its stamp (the first 8 bytes of
   every trace id it carried) and the monotonic time of the answer; a run id is its trace id in
   hex, so `int(run_id[:16], 16)` names the request that carried the run's spans, root included.
   Latency = arrival of the run's run.completed / run.failed at the receiver minus that ack,
   per subscription (p50/p95/p99/max), split at the event's outbox stamp (emitted_ms, taken when
   the assembly cycle's outbox write starts) into "ack → outbox stamp" (the assembly) and
   "outbox stamp → received" (that write, then the dispatcher's queue and the HTTP request).
4. After the load it waits up to --drain-timeout for the assembly to emit every run's end and for
   each subscription to receive every matching event (the outbox is read through the server's
   SQL endpoint: `SELECT type, count() FROM lifecycle_events GROUP BY type`), and reports the
   backlog at the end of the load, the drain time, or what was left and the delivery rate.

Exit status non-zero when stored != acknowledged, a request failed, a server did not exit 0, a
delivered signature did not verify, or a receiver got a message it could not read; missing the
throughput target or leaving a backlog is reported, not a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from analytics.webhooks.reading import expand
from bench.ingest import _drive, _machine_busy_s, percentile
from bench.loadgen import WorkerResult
from bench.server import ServerError, WrmProcess

PRESETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("all", ("*",)),
    ("runs", ("run.*",)),
    ("outcomes", ("run.completed", "run.failed")),
)
RUN_END = ("run.completed", "run.failed")
TARGET_RATIO = 0.90  # with subscriptions, at least 90 % of the baseline's spans/s
POLL_S = 0.5  # how often the drain loop asks the server


@dataclass(frozen=True)
class Sub:
    name: str
    events: tuple[str, ...]

    @property
    def path(self) -> str:
        return f"/{self.name}"

    @property
    def types(self) -> list[str]:
        """The concrete event types it receives, as the dispatcher expands them."""
        return expand(self.events)


@dataclass(frozen=True)
class Hit:
    at: float  # time.monotonic() when the body had been read
    msg_id: str
    type: str
    run_id: str


@dataclass
class Receiver:
    """Records every POST by path; answers 200 with an empty body straight away."""

    hits: dict[str, list[Hit]] = field(default_factory=dict)
    first: dict[str, tuple[dict[str, str], bytes]] = field(default_factory=dict)  # for the signature
    unreadable: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as any production endpoint

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                at = time.monotonic()
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    doc = json.loads(body)
                    data = doc.get("data") or {}
                    hit = Hit(
                        at, headers.get("webhook-id", ""), str(doc["type"]), str(data.get("run_id", ""))
                    )
                except (ValueError, KeyError, TypeError, AttributeError):
                    hit = None
                with outer._lock:
                    if hit is None:
                        outer.unreadable += 1
                    else:
                        outer.hits.setdefault(self.path, []).append(hit)
                        outer.first.setdefault(self.path, (headers, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True)
        self._thread.start()

    def url(self, sub: Sub) -> str:
        return f"http://127.0.0.1:{self.port}{sub.path}"

    def snapshot(self, sub: Sub) -> list[Hit]:
        with self._lock:
            return list(self.hits.get(sub.path, ()))

    def distinct(self, sub: Sub) -> int:
        with self._lock:
            return len({h.msg_id for h in self.hits.get(sub.path, ())})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load per phase (default 30)")
    p.add_argument(
        "--subscriptions",
        type=int,
        default=3,
        help=f"how many of the preset subscriptions ({', '.join(n for n, _ in PRESETS)}), in that order",
    )
    p.add_argument(
        "--events",
        action="append",
        metavar="SPEC",
        help="event types of one subscription, comma-separated; once per subscription (not the presets)",
    )
    p.add_argument("--rounds", type=int, default=1, help="baseline/subscribed pairs, alternating order (1)")
    p.add_argument(
        "--drain-timeout", type=float, default=60.0, help="longest wait for the queues after the load, s (60)"
    )
    p.add_argument("--no-baseline", action="store_true", help="only the phase with subscriptions")
    p.add_argument("--procs", type=int, default=2, help="load-generator processes (default 2)")
    p.add_argument("--threads", type=int, default=4, help="sending threads per process (default 4)")
    p.add_argument("--pool", type=int, default=50, help="distinct requests built up front, in total (50)")
    p.add_argument("--spans", type=int, default=1000, help="spans per request (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="seed for the generated traces")
    p.add_argument(
        "--transport", choices=("grpc", "http", "http-json"), default="grpc", help="OTLP transport"
    )
    p.add_argument("--stats-interval", type=float, default=5.0, help="server counter log period, s")
    p.add_argument("--json", metavar="FILE", help="also write the JSON summary here")
    p.add_argument("--keep", action="store_true", help="keep the warehouses and server logs (temp dir)")
    return p


def _subscriptions(args: argparse.Namespace) -> list[Sub]:
    if args.events:
        return [
            Sub(f"sub{i + 1}", tuple(e.strip() for e in spec.split(",") if e.strip()))
            for i, spec in enumerate(args.events)
        ]
    subs: list[Sub] = []
    for i in range(args.subscriptions):  # beyond the presets: the same again, numbered
        name, events = PRESETS[i % len(PRESETS)]
        subs.append(Sub(name if i < len(PRESETS) else f"{name}{i // len(PRESETS) + 1}", events))
    return subs


def _subscribe(server: WrmProcess, url: str, sub: Sub) -> str:
    """POST /v1/webhooks (auth is off: loopback needs no key); returns the signing secret."""
    body = json.dumps({"url": url, "events": list(sub.events), "description": f"bench.webhooks {sub.name}"})
    req = urllib.request.Request(
        f"http://{server.http}/v1/webhooks",
        data=body.encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        created: dict[str, Any] = json.loads(resp.read())
    if resp.status != 201 or not str(created.get("secret", "")).startswith("whsec_"):
        raise ServerError(f"POST /v1/webhooks answered {resp.status}: {created}")
    return str(created["secret"])


def _emitted(server: WrmProcess) -> dict[str, int]:
    """Distinct events in the outbox by type (test events, for one subscription, left out)."""
    text = server.sql(
        "SELECT type, uniqExact(event_id) FROM wrm.lifecycle_events WHERE webhook_id = '' GROUP BY type",
        timeout_s=60,
    )
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, _, n = line.partition("\t")
        if name:
            out[name] = int(n)
    return out


def _run_end_stamps(server: WrmProcess) -> dict[str, int]:
    """run_id → emitted_ms of its run.completed / run.failed event."""
    text = server.sql(
        "SELECT run_id, min(emitted_ms) FROM wrm.lifecycle_events "
        "WHERE webhook_id = '' AND type IN ('run.completed', 'run.failed') GROUP BY run_id",
        timeout_s=120,
    )
    out: dict[str, int] = {}
    for line in text.splitlines():
        run_id, _, ms = line.partition("\t")
        if run_id:
            out[run_id] = int(ms)
    return out


def _dist(values: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 50), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "p99_ms": round(percentile(values, 99), 1),
        "max_ms": round(max(values), 1) if values else 0.0,
    }


def _phase(args: argparse.Namespace, subs: list[Sub], label: str) -> dict[str, Any]:
    """One server, one load, then the drain; returns the phase's figures."""
    tmp = Path(tempfile.mkdtemp(prefix="wrm-bench-webhooks-"))
    server = WrmProcess(tmp / "warehouse", args.stats_interval, tmp / "server.log")
    receiver = Receiver() if subs else None
    exit_code: int | None = None
    try:
        print(server.wait_ready(), flush=True)
        secrets = {s.name: _subscribe(server, receiver.url(s), s) for s in subs} if receiver else {}
        for s in subs:
            print(f"  subscription {s.name}: events {list(s.events)} → {s.path}", flush=True)
        print(
            f"{label}: {args.transport}, {args.procs} procs × {args.threads} threads, "
            f"{args.pool} requests of {args.spans} spans, {args.seconds:g} s",
            flush=True,
        )
        before: list[float] = []

        def on_start() -> None:
            before.extend((server.cpu_seconds(), _machine_busy_s(), time.process_time()))

        load: WorkerResult
        load, started, ended = _drive(args, server.otlp, on_start)
        cpu_server = server.cpu_seconds() - before[0]
        busy = _machine_busy_s() - before[1]
        cpu_receiver = time.process_time() - before[2]  # this process: the receiver, mostly
        elapsed = ended - started
        # The backlog when the load stops: what the outbox holds against what has arrived.
        at_end = {s.name: receiver.distinct(s) for s in subs} if receiver else {}
        emitted_end = _emitted(server)
        runs_acked = sum(traces for _, _, traces in load.acks)

        # Drain: wait for the assembly to emit every run's end and each queue to deliver its events.
        drain_from = time.monotonic()
        caught: dict[str, float] = {}
        assembled_after: float | None = None
        emitted = emitted_end
        while True:
            now = time.monotonic()
            emitted = _emitted(server)
            if assembled_after is None and sum(emitted.get(t, 0) for t in RUN_END) >= runs_acked:
                assembled_after = now - drain_from
            if assembled_after is not None and receiver:
                for s in subs:
                    if s.name not in caught and receiver.distinct(s) >= sum(
                        emitted.get(t, 0) for t in s.types
                    ):
                        caught[s.name] = now - drain_from
            if assembled_after is not None and len(caught) == len(subs):
                break
            if now - drain_from > args.drain_timeout:
                break
            time.sleep(POLL_S)
        drain_s = time.monotonic() - drain_from
        stamps = _run_end_stamps(server)
        stored = int(server.sql("SELECT count() FROM wrm.spans FINAL").strip())
        metrics = server.metrics()
        exit_code = server.stop()
    except BaseException:
        if exit_code is None:
            server.stop(10)
        print(f"server log ({tmp / 'server.log'}):\n{server.stderr_tail()}", file=sys.stderr)
        raise
    finally:
        if receiver:
            receiver.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}", file=sys.stderr)

    ack_at = {stamp: at for stamp, at, _ in load.acks}
    wall_minus_mono = time.time() - time.monotonic()  # CLOCK_MONOTONIC is shared by every process
    per_sub: list[dict[str, Any]] = []
    bad_signatures: list[str] = []
    for s in subs:
        assert receiver is not None
        hits = receiver.snapshot(s)
        seen: dict[str, Hit] = {}
        for h in hits:
            seen.setdefault(h.msg_id, h)
        expected = sum(emitted.get(t, 0) for t in s.types)
        expected_end = sum(emitted_end.get(t, 0) for t in s.types)
        total, outbox, dispatch = [], [], []
        unmatched = 0
        for h in seen.values():
            if h.type not in RUN_END:
                continue
            try:
                acked = ack_at.get(int(h.run_id[:16], 16))
            except ValueError:
                acked = None
            if acked is None:
                unmatched += 1
                continue
            total.append((h.at - acked) * 1000)
            if h.run_id in stamps:
                out_at = stamps[h.run_id] / 1000 - wall_minus_mono
                outbox.append((out_at - acked) * 1000)
                dispatch.append((h.at - out_at) * 1000)
        delivered = len(seen)
        during_drain = delivered - at_end[s.name]
        first = receiver.first.get(s.path)
        if first is not None:
            try:
                Webhook(secrets[s.name]).verify(first[1], first[0])
            except Exception as exc:  # the library raises its own error types
                bad_signatures.append(f"{s.name}: {exc}")
        per_sub.append(
            {
                "name": s.name,
                "events": list(s.events),
                "emitted": expected,
                "emitted_at_load_end": expected_end,
                "delivered_at_load_end": at_end[s.name],
                "backlog_at_load_end": max(0, expected_end - at_end[s.name]),
                "delivered": delivered,
                "undelivered": max(0, expected - delivered),
                "duplicates": len(hits) - delivered,
                "delivered_by_type": dict(Counter(h.type for h in seen.values())),
                "drained_after_s": round(caught[s.name], 1) if s.name in caught else None,
                "delivered_per_s_during_load": round(at_end[s.name] / elapsed) if elapsed > 0 else 0,
                "emitted_per_s_during_load": round(expected_end / elapsed) if elapsed > 0 else 0,
                "delivered_per_s_during_drain": round(during_drain / drain_s) if drain_s > 0 else 0,
                "latency_ack_to_received": _dist(total),
                "latency_ack_to_outbox": _dist(outbox),
                "latency_outbox_to_received": _dist(dispatch),
                "unmatched_run_ids": unmatched,
            }
        )
    rate = load.acked_spans / elapsed if elapsed > 0 else 0.0
    lag_n = metrics.get("wrm_webhook_delivery_lag_seconds_count", 0)
    return {
        "label": label,
        "subscriptions": len(subs),
        "seconds": round(elapsed, 2),
        "requests_ok": load.requests_ok,
        "acked_spans": load.acked_spans,
        "spans_per_s": round(rate),
        "request_p50_ms": round(percentile(load.latencies_ms, 50), 1),
        "request_p99_ms": round(percentile(load.latencies_ms, 99), 1),
        "retries": load.retries,
        "failed_requests": len(load.failures),
        "first_failure": load.failures[0] if load.failures else "",
        "stored_spans": stored,
        "stored_equals_acked": stored == load.acked_spans,
        "runs_acked": runs_acked,
        "emitted_at_load_end": emitted_end,
        "emitted": emitted,
        "run_ends_emitted": sum(emitted.get(t, 0) for t in RUN_END),
        "assembly_caught_up_after_s": round(assembled_after, 1) if assembled_after is not None else None,
        "drain_waited_s": round(drain_s, 1),
        "server_cpu_cores": round(cpu_server / elapsed, 2) if elapsed > 0 else 0.0,
        "client_cpu_cores": round(load.cpu_s / elapsed, 2) if elapsed > 0 else 0.0,
        "receiver_cpu_cores": round(cpu_receiver / elapsed, 2) if elapsed > 0 else 0.0,
        "other_cpu_cores": round(max(0.0, busy - cpu_server - load.cpu_s - cpu_receiver) / elapsed, 2)
        if elapsed > 0
        else 0.0,
        "server_peak_rss_mib": round(server.peak_rss / 2**20, 1),
        "server_outbox_to_first_attempt_mean_s": round(
            metrics.get("wrm_webhook_delivery_lag_seconds_sum", 0) / lag_n, 2
        )
        if lag_n
        else None,
        "server_exit": exit_code,
        "receiver_unreadable": receiver.unreadable if receiver else 0,
        "bad_signatures": bad_signatures,
        "per_subscription": per_sub,
    }


def _print_phase(p: dict[str, Any]) -> None:
    print(
        f"  acknowledged {p['acked_spans']:,} spans in {p['seconds']} s = {p['spans_per_s']:,} spans/s "
        f"({p['requests_ok']:,} requests, p50 {p['request_p50_ms']} ms, p99 {p['request_p99_ms']} ms, "
        f"retries {p['retries']}, failed {p['failed_requests']}); stored {p['stored_spans']:,} "
        f"({'= acknowledged' if p['stored_equals_acked'] else 'NOT = acknowledged'})\n"
        f"  CPU: server {p['server_cpu_cores']} cores, load generator {p['client_cpu_cores']}, "
        f"receiver {p['receiver_cpu_cores']}, other processes {p['other_cpu_cores']}; "
        f"server peak RSS {p['server_peak_rss_mib']} MiB, exit {p['server_exit']}"
    )
    em = p["emitted"]
    print(
        f"  outbox: {sum(em.values()):,} events ("
        + ", ".join(f"{t} {n:,}" for t, n in sorted(em.items()))
        + f"); {p['runs_acked']:,} runs acknowledged, {p['run_ends_emitted']:,} ended in the outbox; "
        + (
            f"the assembly caught up {p['assembly_caught_up_after_s']} s after the load"
            if p["assembly_caught_up_after_s"] is not None
            else f"the assembly had NOT caught up {p['drain_waited_s']} s after the load"
        )
    )
    if not p["per_subscription"]:
        return
    for s in p["per_subscription"]:
        t, o, d = s["latency_ack_to_received"], s["latency_ack_to_outbox"], s["latency_outbox_to_received"]
        missing = " (the others NOT delivered)" if t["count"] < p["run_ends_emitted"] else ""
        print(
            f"  {s['name']} {s['events']}: at the load's end {s['delivered_at_load_end']:,} of "
            f"{s['emitted_at_load_end']:,} delivered, backlog {s['backlog_at_load_end']:,} "
            f"(during the load {s['emitted_per_s_during_load']:,}/s emitted, "
            f"{s['delivered_per_s_during_load']:,}/s delivered)\n"
            f"      in all {s['delivered']:,} of {s['emitted']:,} delivered, "
            + _drained(s, p, "drained {s} s after the load", "NOT drained: {left:,} left after {waited} s")
            + f" ({s['delivered_per_s_during_drain']:,}/s in the drain); duplicates {s['duplicates']}\n"
            f"      span acknowledged → run.completed/failed received: {t['count']:,} of "
            f"{p['run_ends_emitted']:,} runs{missing}, "
            f"p50 {t['p50_ms']:,} / p95 {t['p95_ms']:,} / p99 {t['p99_ms']:,} / max {t['max_ms']:,} ms\n"
            f"      of which ack → outbox stamp p50 {o['p50_ms']:,} / p95 {o['p95_ms']:,} ms, "
            f"outbox stamp → received p50 {d['p50_ms']:,} / p95 {d['p95_ms']:,} ms"
            + (f"; {s['unmatched_run_ids']} run ids matched no request" if s["unmatched_run_ids"] else "")
        )
    if p["server_outbox_to_first_attempt_mean_s"] is not None:
        print(f"  server: outbox → first attempt, mean {p['server_outbox_to_first_attempt_mean_s']} s")


def _summary(args: argparse.Namespace, subs: list[Sub], phases: list[dict[str, Any]]) -> dict[str, Any]:
    base = [p["spans_per_s"] for p in phases if not p["subscriptions"]]
    hooked = [p["spans_per_s"] for p in phases if p["subscriptions"]]
    mean_base = sum(base) / len(base) if base else 0.0
    mean_hooked = sum(hooked) / len(hooked) if hooked else 0.0
    ratio = mean_hooked / mean_base if mean_base else None
    return {
        "duration_s": args.seconds,
        "procs": args.procs,
        "threads": args.threads,
        "spans_per_request": args.spans,
        "transport": args.transport,
        "settings": {
            "WRM_WEBHOOKS_ALLOW_PRIVATE": os.environ.get("WRM_WEBHOOKS_ALLOW_PRIVATE"),
            "WRM_ASSEMBLE_INTERVAL_MS": os.environ.get("WRM_ASSEMBLE_INTERVAL_MS", "default (1000)"),
            "WRM_WEBHOOKS_POLL_MS": os.environ.get("WRM_WEBHOOKS_POLL_MS", "default (250)"),
        },
        "subscriptions": [{"name": s.name, "events": list(s.events), "types": s.types} for s in subs],
        "baseline_spans_per_s": [round(x) for x in base],
        "subscribed_spans_per_s": [round(x) for x in hooked],
        "ratio": round(ratio, 3) if ratio is not None else None,
        "target_met": ratio >= TARGET_RATIO if ratio is not None else None,
        "phases": phases,
    }


def _drained(sub: dict[str, Any], phase: dict[str, Any], done: str, left: str) -> str:
    if sub["drained_after_s"] is not None:
        return done.format(s=sub["drained_after_s"])
    return left.format(left=sub["undelivered"], of=sub["emitted"], waited=phase["drain_waited_s"])


def _report(s: dict[str, Any]) -> None:
    print("== summary ==")
    print("subscriptions: " + "; ".join(f"{x['name']} {x['events']}" for x in s["subscriptions"]))
    base, hooked = s["baseline_spans_per_s"], s["subscribed_spans_per_s"]
    if s["ratio"] is not None:
        print(
            f"ingest: no subscription {', '.join(f'{x:,}' for x in base)} spans/s, "
            f"{len(s['subscriptions'])} subscriptions {', '.join(f'{x:,}' for x in hooked)} spans/s "
            f"(other processes {', '.join(str(p['other_cpu_cores']) for p in s['phases'])} cores): "
            f"{(s['ratio'] - 1) * 100:+.1f} % (target within {100 - TARGET_RATIO * 100:.0f} %: "
            f"{'met' if s['target_met'] else 'NOT met'})"
        )
    else:
        print(f"ingest with subscriptions: {', '.join(f'{x:,}' for x in hooked)} spans/s (no baseline run)")
    for p in s["phases"]:
        for sub in p["per_subscription"]:
            t = sub["latency_ack_to_received"]
            drained = _drained(
                sub,
                p,
                "drained {s} s after the load",
                "{left:,} of {of:,} NOT delivered {waited} s after the load",
            )
            print(
                f"{p['label']} {sub['name']}: ack → received p50 {t['p50_ms']:,} ms, p95 {t['p95_ms']:,} ms "
                f"({t['count']:,} runs); backlog at load end {sub['backlog_at_load_end']:,} of "
                f"{sub['emitted_at_load_end']:,}; {drained}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.seconds = args.duration  # the name bench.ingest's load driver reads
    subs = _subscriptions(args)
    if args.duration <= 0 or args.procs < 1 or args.threads < 1 or args.spans < 2 or args.pool < 1:
        print("bench: --duration/--procs/--threads/--pool must be positive, --spans ≥ 2", file=sys.stderr)
        return 2
    if not subs or args.rounds < 1:
        print("bench: at least one subscription and one round", file=sys.stderr)
        return 2
    os.environ["WRM_WEBHOOKS_ALLOW_PRIVATE"] = "true"  # both phases: the servers differ only in subscriptions
    phases: list[dict[str, Any]] = []
    try:
        for r in range(1, args.rounds + 1):
            order: list[list[Sub]] = [[], subs] if r % 2 else [subs, []]
            for phase_subs in order:
                if not phase_subs and args.no_baseline:
                    continue
                label = (
                    f"round {r}, {len(phase_subs)} subscriptions" if phase_subs else f"round {r}, baseline"
                )
                print(f"== {label} ==", flush=True)
                phase = _phase(args, phase_subs, label)
                _print_phase(phase)
                phases.append(phase)
    except (ServerError, RuntimeError, OSError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    summary = _summary(args, subs, phases)
    _report(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    broken = [
        p["label"]
        for p in phases
        if not p["stored_equals_acked"]
        or p["failed_requests"]
        or p["server_exit"] != 0
        or p["bad_signatures"]
        or p["receiver_unreadable"]
    ]
    if broken:
        print(
            f"bench: FAILED in {', '.join(broken)} (stored != acknowledged, a failed request, a server "
            "exit other than 0, a bad signature or an unreadable message)",
            file=sys.stderr,
        )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
