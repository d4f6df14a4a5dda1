"""Run API benchmark: the /v1 runs endpoints over 1M runs and 10M steps, timed from an HTTP client.

    python -m bench.api [--runs 1000000] [--steps-per-run 10] [--repeat 50] [--auth] [--out result.json]

Runs are generated into `runs_store` with the indicator benchmark's SQL (which also fills
`runs_by_time` through its materialized view); failed runs then get a failure reason and a failed
step, and every run gets `--steps-per-run` steps in `steps_store` (same tenant and trace ids, the
last step failed for failed runs), all with SQL in bounded chunks. The real server (`WrmServer`)
then serves that warehouse on a free port, and an `httpx.Client` with keep-alive times each
request wall-clock: `--repeat` requests after 5 warm-up ones, reported as p50 / p95 / max in ms.
Every case is measured twice: as the server serves it (`http`), then on a new connection after
setting TCP_NODELAY on the server's listening socket (`http_nodelay`): the server's socket is
made with proto 0, so asyncio leaves Nagle on for its connections and a keep-alive client waits
for the delayed ACK (~40 ms) on every response. `floor /openapi.json` is a cached response: the
HTTP cost alone.

Measured: the first page with no filter and with each filter, page 100 by cursor, run detail and
run steps (random existing runs). Afterwards the same list and detail calls run in-process with
every SQL statement timed, to split the time between the engine and Python + HTTP. Targets
(issue 5): first page p95 <= 50 ms with and without filters, page 100 by cursor <= 50 ms, run
detail p95 <= 30 ms. Missing a target is reported; the exit status is non-zero only when a
request fails.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import random
import re
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import psutil

from analytics.runs.detail import run_detail
from analytics.runs.listing import RunFilter, list_runs
from bench.indicators import _GENERATE, CHUNK
from warehouse import Warehouse, migrate
from wrm.server import WrmServer
from wrm.settings import load_settings

TARGET_PAGE_MS = 50.0
TARGET_DETAIL_MS = 30.0
WARMUP = 5
# runs spread over 89 days: the generators keep rows 90 days, so none expires during the run
DAYS = 89
PAGE = 50
TAG = "bench-flagged"
STEP_CHUNK_ROWS = 1_000_000
STEP_NAMES = (
    "plan", "retrieve", "call_model", "lookup", "call_model", "tool_call", "summarize", "check_policy",
    "call_model", "validate",
)  # fmt: skip
# (error_type, message) of a failed run's last step, picked by cityHash64(trace_id) % 3
ERRORS = (
    ("TimeoutError", "upstream model timed out after 30 s"),
    ("ValidationError", "output does not match the response schema"),
    ("RateLimitError", "rate limit exceeded, retry later"),
)
FAILURE_TEXT = "timed out"

_ERR_TYPES = "[" + ", ".join(f"'{t}'" for t, _ in ERRORS) + "]"
_ERR_MESSAGES = "[" + ", ".join(f"'{m}'" for _, m in ERRORS) + "]"

# Steps for runs [offset, offset + count) of the indicator generator: trace id and start time are
# computed from the run number the same way, steps follow each other 700 ms apart, odd steps
# nest under the step before them, the last step of a failed run (h < 6, as in _GENERATE) failed.
_STEPS = f"""
INSERT INTO steps_store (tenant_id, trace_id, step_id, run_id, parent_step_id, parent_span_id, name, type,
    attempt, status, source_status, failure_kind, error_type, error_message, start_time, end_time,
    duration_ns, input_tokens, output_tokens, cost_usd, model, validation_name, validation_passed,
    quality_score, human_decision, human_actor, human_wait_ms, user_id, session_id, service_name, span_name,
    attributes, retention_days, assembled_at, is_deleted)
SELECT 'default', tid, lower(hex(sipHash64(tid, k))), tid,
    if(k % 2 = 1, lower(hex(sipHash64(tid, k - 1))), ''), lower(hex(sipHash64(run))),
    [{", ".join(f"'{n}'" for n in STEP_NAMES)}][k % {len(STEP_NAMES)} + 1] AS nm,
    if(k % 2 = 0, 'llm', 'tool') AS typ, 1,
    if(failed, 'failed', 'completed'), if(failed, 'error', 'ok'), if(failed, 'error', ''),
    if(failed, {_ERR_TYPES}[err], ''), if(failed, {_ERR_MESSAGES}[err], ''),
    st, st + toIntervalMillisecond(dur_ms), dur_ms * 1000000,
    if(typ = 'llm', 800 + h * 10, 0), if(typ = 'llm', 150 + h, 0), if(typ = 'llm', (800 + h * 10) * 3e-6, 0),
    if(typ = 'llm', 'gpt-4o', ''), if(k = {{spr:UInt32}} - 1, 'schema', ''),
    if(k = {{spr:UInt32}} - 1, toNullable(toUInt8(NOT failed)), NULL),
    if(typ = 'llm', toNullable(0.5 + h / 200), NULL),
    '', '', 0, concat('user-', toString(run % 5000)), concat('session-', toString(run % 50000)),
    'bench-agent', nm, map('wrm.step.type', typ), 90, now64(6), 0
FROM (
    SELECT intDiv(number, {{spr:UInt32}}) AS run, number % {{spr:UInt32}} AS k,
           lower(hex(sipHash128(run))) AS tid,
           cityHash64(run) % 100 AS h,
           h < 6 AND k = {{spr:UInt32}} - 1 AS failed,
           cityHash64(tid) % 3 + 1 AS err,
           intDiv((run * 7919) % {{n:UInt64}} * {{days:UInt32}} * 86400, {{n:UInt64}}) AS age_s,
           now64(9) - toIntervalSecond(age_s) + toIntervalMillisecond(k * 700) AS st,
           toUInt64(100 + cityHash64(run, k) % 600) AS dur_ms
    FROM numbers({{offset:UInt64}} * {{spr:UInt32}}, {{count:UInt64}} * {{spr:UInt32}})
)
"""

# The failure reason a failed run's last step gives, and the step count, on both run tables
# (a mutation does not go through runs_by_time_mv, so each table is updated).
_REASON = (
    f"if(status = 'failed', concat({{last:String}}, ': ', {_ERR_TYPES}[cityHash64(trace_id) % 3 + 1], ': ', "
    f"{_ERR_MESSAGES}[cityHash64(trace_id) % 3 + 1]), '')"
)
_FIX_RUNS = (
    f"ALTER TABLE runs_store UPDATE step_count = {{spr:UInt32}}, failure_reason = {_REASON}, "
    "failed_step = if(status = 'failed', {last:String}, ''), "
    "failed_step_id = if(status = 'failed', lower(hex(sipHash64(trace_id, {spr:UInt32} - 1))), '') WHERE 1"
)
_FIX_BY_TIME = (
    f"ALTER TABLE runs_by_time UPDATE step_count = {{spr:UInt32}}, failure_reason = {_REASON} WHERE 1"
)

# first-page cases: name → query parameters (all with limit=50)
FIRST_PAGES: dict[str, dict[str, str]] = {
    "no filter": {},
    "workflow=kyc&status=failed": {"workflow": "kyc", "status": "failed"},
    "version=v2": {"version": "v2"},
    "environment=staging": {"environment": "staging"},
    f"tag={TAG}": {"tag": TAG},
    "min_duration_ms=30000": {"min_duration_ms": "30000"},
    f"failure_text={FAILURE_TEXT}": {"failure_text": FAILURE_TEXT},
    "sort=duration": {"sort": "duration"},
}


class RequestFailed(Exception):
    pass


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered), math.ceil(q * len(ordered))) - 1)]


def _stats(ms: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.50), 1),
        "p95_ms": round(percentile(ms, 0.95), 1),
        "max_ms": round(max(ms), 1),
    }


def _measure(call: Callable[[int], Any], repeat: int) -> dict[str, float]:
    """`call(i)` WARMUP times untimed, then `repeat` times timed; i counts from 0 over both."""
    for i in range(WARMUP):
        call(i)
    ms = []
    for i in range(WARMUP, WARMUP + repeat):
        t0 = time.perf_counter()
        call(i)
        ms.append((time.perf_counter() - t0) * 1000)
    return _stats(ms)


class Api:
    """The HTTP client; every call checks for a 2xx answer."""

    def __init__(self, base_url: str, key: str = "") -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(base_url=base_url, timeout=120, headers=headers)

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        r = self.http.get(path, params=params)
        if r.status_code != 200:
            raise RequestFailed(f"GET {r.request.url} → {r.status_code}: {r.text[:500]}")
        return r.json()

    def post(self, path: str, body: Any) -> Any:
        r = self.http.post(path, json=body)
        if r.status_code // 100 != 2:
            raise RequestFailed(f"POST {path} → {r.status_code}: {r.text[:500]}")
        return r.json()


class _TimedClient:
    """Stands in for a clickhouse-connect client or a Warehouse and times each SQL statement."""

    def __init__(self, target: Any, log: list[tuple[str, float]]) -> None:
        self._target = target
        self._log = log

    def _timed(self, fn: Callable[..., Any], sql: str, *args: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(sql, *args, **kw)
        finally:
            self._log.append((sql, (time.perf_counter() - t0) * 1000))

    def query(self, sql: str, *args: Any, **kw: Any) -> Any:
        return self._timed(self._target.query, sql, *args, **kw)

    def rows(self, sql: str, *args: Any, **kw: Any) -> Any:
        return self._timed(self._target.rows, sql, *args, **kw)

    @property
    def reader(self) -> _TimedClient:
        return _TimedClient(self._target.reader, self._log)


class RssSampler:
    """Samples this process's RSS every 0.1 s while running."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(0.1)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def _mib(n: float) -> float:
    return round(n / 2**20, 1)


def generate(wh: Warehouse, runs: int, spr: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    for offset in range(0, runs, CHUNK):
        count = min(CHUNK, runs - offset)
        wh.command(_GENERATE, {"n": runs, "days": DAYS, "offset": offset, "count": count})
    out["generate_runs_s"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    last = STEP_NAMES[(spr - 1) % len(STEP_NAMES)]
    for sql in (_FIX_RUNS, _FIX_BY_TIME):
        wh.client.command(sql, parameters={"spr": spr, "last": last}, settings={"mutations_sync": 2})
    out["failure_reasons_s"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    per_chunk = max(1, STEP_CHUNK_ROWS // spr)
    for offset in range(0, runs, per_chunk):
        count = min(per_chunk, runs - offset)
        wh.command(_STEPS, {"n": runs, "days": DAYS, "offset": offset, "count": count, "spr": spr})
    out["generate_steps_s"] = round(time.perf_counter() - t0, 2)
    return out


def table_facts(wh: Warehouse) -> dict[str, Any]:
    rows = wh.rows(
        "SELECT table, count(), sum(rows), sum(bytes_on_disk) FROM system.parts "
        "WHERE database = currentDatabase() AND active "
        "AND table IN ('runs_store', 'runs_by_time', 'steps_store') "
        "GROUP BY table ORDER BY table"
    )
    return {str(t): {"parts": int(p), "rows": int(r), "mib_on_disk": _mib(b)} for t, p, r, b in rows}


def _get_page(api: Api, params: Mapping[str, str], _i: int) -> Any:
    return api.get("/v1/runs", params)


def measure_http(api: Api, repeat: int, detail_ids: list[str], steps_ids: list[str]) -> dict[str, Any]:
    """Every timed HTTP case once; returns the figures and the cursor of page 99."""
    out: dict[str, Any] = {"floor /openapi.json": _measure(lambda _i: api.get("/openapi.json"), repeat)}
    first: dict[str, Any] = {}
    for name, params in FIRST_PAGES.items():
        q = {"limit": str(PAGE), **params}
        stats = _measure(functools.partial(_get_page, api, q), repeat)
        stats["runs_on_page"] = len(api.get("/v1/runs", q)["runs"])
        first[name] = stats
    out["first_page"] = first

    cursor: str | None = None
    t0 = time.perf_counter()
    for _ in range(99):
        page = api.get("/v1/runs", {"limit": str(PAGE), **({"cursor": cursor} if cursor else {})})
        cursor = page["next_cursor"]
        if cursor is None:
            raise RequestFailed("the run list ended before page 100")
    walk_s = time.perf_counter() - t0
    assert cursor is not None  # the walk above raised otherwise
    page100 = {"limit": str(PAGE), "cursor": cursor}
    stats = _measure(lambda _i: api.get("/v1/runs", page100), repeat)
    stats["runs_on_page"] = len(api.get("/v1/runs", page100)["runs"])
    stats["walk_99_pages_s"] = round(walk_s, 2)
    out["page_100_by_cursor"] = stats
    out["cursor_99"] = cursor

    out["run_detail"] = _measure(lambda i: api.get(f"/v1/runs/{detail_ids[i]}"), repeat)
    out["run_steps"] = _measure(lambda i: api.get(f"/v1/runs/{steps_ids[i]}/steps"), repeat)
    return out


def _set_nodelay(server: WrmServer) -> None:
    """TCP_NODELAY on the HTTP listener; Linux passes it on to the connections it accepts. (The
    server's socket is made with proto 0, so asyncio does not set it on accepted connections.)"""
    assert server._http_listener is not None
    for srv in server._http_listener._server.servers:
        for sock in srv.sockets:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1_000_000)
    p.add_argument("--steps-per-run", type=int, default=10)
    p.add_argument("--repeat", type=int, default=50, help="timed requests per case (after 5 warm-up)")
    p.add_argument("--tagged", type=int, default=300, help="runs to tag through the API first")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--out", metavar="FILE", help="write the result as JSON here too")
    p.add_argument(
        "--keep", action="store_true", help="keep the warehouse directory (for EXPLAIN afterwards)"
    )
    p.add_argument(
        "--auth", action="store_true", help="require API keys; every request sends an operator key"
    )
    args = p.parse_args(argv)
    if args.runs < (100 + 1) * PAGE or args.steps_per_run < 1:
        p.error(f"--runs must be at least {(100 + 1) * PAGE} (page 100 must exist), --steps-per-run >= 1")

    tmp = tempfile.mkdtemp(prefix="wrm-bench-api-")
    wh = Warehouse.open(f"chdb://{tmp}", "wrm")
    server: WrmServer | None = None
    clients: list[Api] = []
    result: dict[str, Any] = {"runs": args.runs, "steps_per_run": args.steps_per_run, "repeat": args.repeat}
    try:
        migrate(wh)
        result.update(generate(wh, args.runs, args.steps_per_run))
        result["rss_after_generate_mib"] = _mib(psutil.Process().memory_info().rss)
        result["tables_before"] = table_facts(wh)

        settings = load_settings(
            otlp_grpc="127.0.0.1:0", otlp_http="127.0.0.1:0", http="127.0.0.1:0",
            database="wrm", stats_log_interval_s=0,
            auth="required" if args.auth else None,
        )  # fmt: skip
        server = WrmServer(settings, warehouse=wh)
        server.start()
        base = f"http://{server.http_address}"
        key = server.create_key("default", "operator", "bench") if args.auth else ""
        result["auth"] = bool(args.auth)
        # random existing runs: to tag, and distinct ones for detail and steps in each pass
        per_case = WARMUP + args.repeat
        sample = [
            str(r[0])
            for r in wh.rows(
                "SELECT run_id FROM runs_store ORDER BY cityHash64(run_id, {s:UInt64}) LIMIT {k:UInt32}",
                {"s": args.seed, "k": args.tagged + 4 * per_case},
            )
        ]
        random.Random(args.seed).shuffle(sample)
        to_tag, rest = sample[: args.tagged], sample[args.tagged :]
        ids = [rest[i * per_case : (i + 1) * per_case] for i in range(4)]

        with RssSampler() as rss:
            clients.append(Api(base, key))
            tag_ms = []
            for run_id in to_tag:
                t0 = time.perf_counter()
                clients[0].post(f"/v1/runs/{run_id}/tags", {"add": [TAG]})
                tag_ms.append((time.perf_counter() - t0) * 1000)
            result["tag_post"] = _stats(tag_ms)
            result["http"] = measure_http(clients[0], args.repeat, ids[0], ids[1])
            # the same again on a new connection, the listener set to TCP_NODELAY
            _set_nodelay(server)
            clients.append(Api(base, key))
            result["http_nodelay"] = measure_http(clients[1], args.repeat, ids[2], ids[3])
        result["rss_api_phase_peak_mib"] = _mib(rss.peak)
        result["tables_after"] = table_facts(wh)

        # the same work in-process, each SQL statement timed: engine vs Python + HTTP
        cursor = result["http"].pop("cursor_99")
        result["http_nodelay"].pop("cursor_99")
        result["in_process"] = in_process(wh, args.repeat, first_cursor=cursor, run_ids=ids[0])
    except RequestFailed as exc:
        print(f"request failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for api in clients:
            api.http.close()
        if server is not None:
            server.stop()
        wh.close()
        if args.keep:
            print(f"warehouse kept: chdb://{tmp} (database wrm)", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    for label, key in (("as served", "http"), ("TCP_NODELAY", "http_nodelay")):
        for line in verdicts(result[key]):
            print(f"{label}: {line}", file=sys.stderr)
    return 0


def in_process(wh: Warehouse, repeat: int, *, first_cursor: str, run_ids: list[str]) -> dict[str, Any]:
    """list_runs and run_detail called directly on the warehouse, each SQL statement timed:
    `sql_page_ms` is the page query alone, `sql_other_ms` the rest (tags, cancel states),
    `call_ms` the whole function."""

    def timed_list(params: dict[str, str], cursor: str | None = None) -> dict[str, float]:
        flt = RunFilter(
            workflow=params.get("workflow", ""),
            version=params.get("version", ""),
            environment=params.get("environment", ""),
            statuses=(params["status"],) if "status" in params else (),
            tag=params.get("tag", ""),
            min_duration_ms=float(params["min_duration_ms"]) if "min_duration_ms" in params else None,
            failure_text=params.get("failure_text", ""),
        )
        sort = params.get("sort", "start")
        page_ms: list[float] = []
        other_ms: list[float] = []
        call_ms: list[float] = []
        for i in range(WARMUP + repeat):
            log: list[tuple[str, float]] = []
            t0 = time.perf_counter()
            list_runs(_TimedClient(wh.reader, log), "default", flt, limit=PAGE, cursor=cursor, sort=sort)  # type: ignore[arg-type]
            if i >= WARMUP:
                call_ms.append((time.perf_counter() - t0) * 1000)
                page_ms.append(log[0][1])
                other_ms.append(sum(ms for _, ms in log[1:]))
        return {
            "sql_page_p50_ms": round(percentile(page_ms, 0.5), 1),
            "sql_page_p95_ms": round(percentile(page_ms, 0.95), 1),
            "sql_other_p50_ms": round(percentile(other_ms, 0.5), 1),
            "call_p50_ms": round(percentile(call_ms, 0.5), 1),
            "call_p95_ms": round(percentile(call_ms, 0.95), 1),
        }

    out: dict[str, Any] = {name: timed_list(params) for name, params in FIRST_PAGES.items()}
    out["page 100 by cursor"] = timed_list({}, first_cursor)

    per_sql: dict[str, list[float]] = {}
    call_ms = []
    for i, run_id in enumerate(run_ids[: WARMUP + repeat]):
        log: list[tuple[str, float]] = []
        t0 = time.perf_counter()
        run_detail(_TimedClient(wh, log), "default", run_id)  # type: ignore[arg-type]
        if i >= WARMUP:
            call_ms.append((time.perf_counter() - t0) * 1000)
            for sql, ms in log:
                per_sql.setdefault(_label(sql), []).append(ms)
    out["run detail"] = {
        "call_p50_ms": round(percentile(call_ms, 0.5), 1),
        "call_p95_ms": round(percentile(call_ms, 0.95), 1),
        "sql_p50_ms": {k: round(percentile(v, 0.5), 1) for k, v in per_sql.items()},
    }
    return out


def _label(sql: str) -> str:
    """A short name for a statement: its table and the columns it looks up by."""
    table = re.search(r"FROM (\w+)", sql)
    where = sql.split("WHERE", 1)[1] if "WHERE" in sql else ""
    cols = [c for c in re.findall(r"(\w+) (?:=|IN) ", where) if c not in ("tenant_id", "present")]
    return f"{table.group(1) if table else '?'} by {', '.join(dict.fromkeys(cols))}"


def verdicts(result: dict[str, Any]) -> list[str]:
    lines = []
    for name, s in result["first_page"].items():
        lines.append(_verdict(f"first page, {name}: p95", s["p95_ms"], TARGET_PAGE_MS))
    s = result["page_100_by_cursor"]
    lines.append(_verdict("page 100 by cursor: p95", s["p95_ms"], TARGET_PAGE_MS))
    lines.append(_verdict("run detail: p95", result["run_detail"]["p95_ms"], TARGET_DETAIL_MS))
    return lines


def _verdict(what: str, ms: float, target: float) -> str:
    if ms <= target:
        return f"target {what} {ms} ms <= {target:g} ms: met"
    return f"target {what} {ms} ms <= {target:g} ms: missed by {ms - target:.1f} ms ({ms / target:.1f}x)"


if __name__ == "__main__":
    sys.exit(main())
