"""Web console benchmark: each /ui/ page over 1M runs and 10M steps, timed from an HTTP client.

    python -m bench.console [--runs 1000000] [--steps-per-run 10] [--repeat 30] [--out result.json]

The data and the server are the run API benchmark's (`bench.api.generate`: runs with the
indicator benchmark's SQL, failure reasons, steps; `WrmServer` on port 0, auth off on
loopback), `--tagged` random runs get a rare tag through `POST /v1/runs/{id}/tags`, then an
`httpx.Client` (keep-alive) GETs each page 5 times untimed and `--repeat` times timed, and
reports p50 / p95 / max in ms, the response size and whether p95 is within issue 17's 300 ms
(timing a page stops after `--page-budget-s` seconds once it has 10 timed requests).
On loopback the request time is the server's time plus well under a millisecond of transport.
A route that answers FastAPI's JSON 404 is recorded as "not built yet".

Then each page is requested a few more times with every SQL statement timed (the engine
client's query methods wrapped, in the server's request threads only): the statements per
page, their sum and the slowest ones, so a slow page says which query it waits on; the rest
of the time is Python (the page function, Jinja, FastAPI). `--warehouse DIR` generates into DIR
and keeps it, or reuses it when it already holds `--runs` runs, so a page can be re-measured
without generating again. The exit status is non-zero when a page answers anything but 200.
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from clickhouse_connect.driver.client import Client

from bench.api import (
    DAYS,
    TAG,
    WARMUP,
    Api,
    RequestFailed,
    RssSampler,
    _label,
    _mib,
    _stats,
    generate,
    table_facts,
)
from derivation.summarizer import Summarizer
from warehouse import Warehouse, migrate
from warehouse.retention import TierDays
from wrm.server import WrmServer
from wrm.settings import load_settings

TARGET_MS = 300.0
PROFILE_REPEAT = 5
MIN_TIMED = 10
# the threads that serve requests: uvicorn's loop, and the worker threads sync handlers run in
_REQUEST_THREADS = re.compile(r"wrm-http|AnyIO|asyncio|ThreadPoolExecutor")
_NEXT_RE = re.compile(r'href="(/ui/\?[^"]*)"\s+rel="next"')
_PROBLEM_RE = re.compile(r"<h1>(.*?)</h1>.*?role=\"alert\">(.*?)</p>", re.S)
_TIMED_METHODS = ("query", "command", "query_df", "raw_query", "raw_stream")


@dataclass
class Case:
    """One page: a name for the table, and the URLs its requests cycle through."""

    name: str
    urls: list[str]

    def url(self, i: int) -> str:
        return self.urls[i % len(self.urls)]


class SqlLog:
    """Times every statement a request thread sends to the engine while `on` is set; nested
    calls (a method calling another wrapped one) count once."""

    def __init__(self) -> None:
        self.on = False
        self.entries: list[tuple[str, float]] = []
        self._local = threading.local()
        self._saved: dict[str, Any] = {}

    @contextmanager
    def installed(self, cls: type[Client]) -> Iterator[SqlLog]:
        for name in _TIMED_METHODS:
            if name in vars(cls) or hasattr(cls, name):
                self._saved[name] = getattr(cls, name)
                setattr(cls, name, self._wrap(self._saved[name]))
        try:
            yield self
        finally:
            for name, fn in self._saved.items():
                setattr(cls, name, fn)

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(client: Client, *args: Any, **kw: Any) -> Any:
            if not self.on or getattr(self._local, "busy", False):
                return fn(client, *args, **kw)
            if not _REQUEST_THREADS.match(threading.current_thread().name):
                return fn(client, *args, **kw)
            sql = str(args[0] if args else kw.get("query", kw.get("cmd", "")))
            self._local.busy = True
            t0 = time.perf_counter()
            try:
                return fn(client, *args, **kw)
            finally:
                self._local.busy = False
                self.entries.append((sql, (time.perf_counter() - t0) * 1000))

        return timed


def _get(http: httpx.Client, url: str) -> httpx.Response:
    r = http.get(url)
    if r.status_code != 200:
        raise RequestFailed(f"GET {url} → {r.status_code}: {r.text[:300]}")
    return r


def _not_built(r: httpx.Response) -> bool:
    """FastAPI's own 404 (JSON) means no route; a console 404 is an HTML page."""
    return r.status_code == 404 and "json" in r.headers.get("content-type", "")


def _problem(page: str) -> str:
    """A console problem page's title and detail, or the start of whatever else came."""
    m = _PROBLEM_RE.search(page)
    return html.unescape(f"{m.group(1)}: {m.group(2)}") if m else page[:300]


def time_case(http: httpx.Client, case: Case, repeat: int, budget_s: float) -> dict[str, Any]:
    first = http.get(case.url(0))
    if first.status_code != 200:
        note = "not built yet" if _not_built(first) else _problem(first.text)
        return {"url": case.url(0), "status": first.status_code, "note": note}
    for i in range(1, WARMUP):
        _get(http, case.url(i))
    ms: list[float] = []
    sizes: list[int] = []
    deadline = time.monotonic() + budget_s
    for i in range(WARMUP, WARMUP + repeat):
        if len(ms) >= MIN_TIMED and time.monotonic() > deadline:
            break  # a page of seconds: enough requests to state it, not `repeat` of them
        t0 = time.perf_counter()
        r = _get(http, case.url(i))
        ms.append((time.perf_counter() - t0) * 1000)
        sizes.append(len(r.content))
    stats: dict[str, Any] = {"url": case.url(0), "status": 200, **_stats(ms)}
    stats["kib"] = round(statistics.median(sizes) / 1024, 1)
    stats["meets_300ms"] = stats["p95_ms"] <= TARGET_MS
    return stats


def profile_case(http: httpx.Client, case: Case, log: SqlLog) -> dict[str, Any]:
    """The statements behind a page: count, their sum, the slowest ones (medians over a few)."""
    totals: list[float] = []
    sql_sums: list[float] = []
    counts: list[int] = []
    per_label: dict[str, list[float]] = {}
    text: dict[str, str] = {}
    for i in range(PROFILE_REPEAT):
        log.entries.clear()
        log.on = True
        t0 = time.perf_counter()
        try:
            _get(http, case.url(WARMUP + i))
        finally:
            log.on = False
        totals.append((time.perf_counter() - t0) * 1000)
        sql_sums.append(sum(ms for _, ms in log.entries))
        counts.append(len(log.entries))
        seen: dict[str, float] = {}
        for sql, ms in log.entries:
            label = _label(sql)
            seen[label] = seen.get(label, 0.0) + ms
            text.setdefault(label, " ".join(sql.split())[:400])
        for label, ms in seen.items():
            per_label.setdefault(label, []).append(ms)
    slowest = sorted(per_label.items(), key=lambda kv: -statistics.median(kv[1]))[:4]
    return {
        "request_p50_ms": round(statistics.median(totals), 1),
        "sql_p50_ms": round(statistics.median(sql_sums), 1),
        "python_p50_ms": round(statistics.median(totals) - statistics.median(sql_sums), 1),
        "statements": max(counts),
        "slowest": [
            {"statement": label, "p50_ms": round(statistics.median(v), 1), "sql": text[label]}
            for label, v in slowest
        ],
    }


def next_page(http: httpx.Client, url: str) -> str:
    """The href of the page's `rel="next"` link (the console's keyset cursor)."""
    m = _NEXT_RE.search(_get(http, url).text)
    if m is None:
        raise RequestFailed(f"{url} has no next-page link")
    return html.unescape(m.group(1))


def cases(http: httpx.Client, detail_ids: list[str]) -> list[Case]:
    since = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    return [
        Case("/ui/ (no filter)", ["/ui/"]),
        Case("/ui/?status=failed", ["/ui/?status=failed"]),
        Case(f"/ui/?workflow=triage&since={since}", [f"/ui/?workflow=triage&since={since}"]),
        Case("/ui/?sort=duration", ["/ui/?sort=duration"]),
        Case(f"/ui/?tag={TAG}", [f"/ui/?tag={TAG}"]),
        Case("/ui/ page 2 (next-page link)", [next_page(http, "/ui/")]),
        Case("/ui/?fragment=rows (10 s refresh)", ["/ui/?fragment=rows"]),
        Case("/ui/runs/{id} (a different run each time)", [f"/ui/runs/{r}" for r in detail_ids]),
        Case("/ui/effectiveness?workflow=triage&since=30d", ["/ui/effectiveness?workflow=triage&since=30d"]),
        Case(
            "/ui/compare?workflow=triage&baseline=v1&candidate=v2",
            ["/ui/compare?workflow=triage&baseline=v1&candidate=v2"],
        ),
    ]


def summarize(wh: Warehouse) -> float:
    """The summary tier the effectiveness and compare pages read, built as bench.indicators does
    (every day noted, then one forced refresh of the server's summarizer); seconds taken."""
    stamp = int(time.time() * 1000)
    wh.command(
        "INSERT INTO summary_dirty SELECT DISTINCT tenant_id, toDate(start_time), {s:Int64} FROM runs_store",
        {"s": stamp},
    )
    t0 = time.perf_counter()
    Summarizer(wh, TierDays(DAYS + 2), TierDays(400), interval_s=0).refresh(stamp, force=True)
    return round(time.perf_counter() - t0, 2)


def prepare(wh: Warehouse, runs: int, spr: int) -> dict[str, Any]:
    """Generate the runs and steps and summarize them, unless the warehouse already holds
    exactly `runs` runs (then only a missing summary is built)."""
    migrate(wh)
    have = int(wh.rows("SELECT count() FROM runs_store")[0][0])
    if have and have != runs:
        raise SystemExit(f"the warehouse holds {have} runs, not {runs}: give a new --warehouse")
    out: dict[str, Any] = {"reused_warehouse": bool(have)}
    if not have:
        out.update(generate(wh, runs, spr))
    if not int(wh.rows("SELECT count() FROM runs_daily_store")[0][0]):
        out["summarize_s"] = summarize(wh)
    return out


def run(args: argparse.Namespace, wh: Warehouse) -> tuple[dict[str, Any], bool]:
    """Everything after generation; returns the result and whether every page answered 200."""
    result: dict[str, Any] = {}
    settings = load_settings(
        otlp_grpc="127.0.0.1:0", otlp_http="127.0.0.1:0", http="127.0.0.1:0",
        database="wrm", stats_log_interval_s=0,
    )  # fmt: skip
    per_case = WARMUP + max(args.repeat, PROFILE_REPEAT)
    sample = [
        str(r[0])
        for r in wh.rows(
            "SELECT run_id FROM runs_store ORDER BY cityHash64(run_id, {s:UInt64}) LIMIT {k:UInt32}",
            {"s": args.seed, "k": args.tagged + per_case},
        )
    ]
    random.Random(args.seed).shuffle(sample)
    to_tag, detail_ids = sample[: args.tagged], sample[args.tagged :]
    server = WrmServer(settings, warehouse=wh)
    server.start()
    api = Api(f"http://{server.http_address}")
    try:
        result["rss_server_started_mib"] = _mib(psutil.Process().memory_info().rss)
        for run_id in to_tag:
            api.post(f"/v1/runs/{run_id}/tags", {"add": [TAG]})
        http = api.http
        all_cases = cases(http, detail_ids)
        pages: dict[str, Any] = {}
        with RssSampler() as rss:
            for case in all_cases:
                pages[case.name] = time_case(http, case, args.repeat, args.page_budget_s)
                print(f"{case.name}: {pages[case.name]}", file=sys.stderr)
        result["pages"] = pages
        result["rss_pages_peak_mib"] = _mib(rss.peak)
        log = SqlLog()
        with log.installed(type(wh.reader)):
            result["where_time_goes"] = {
                c.name: profile_case(http, c, log) for c in all_cases if pages[c.name]["status"] == 200
            }
    finally:
        api.http.close()
        server.stop()
    return result, all(p["status"] == 200 for p in pages.values())


def verdicts(pages: dict[str, Any]) -> list[str]:
    lines = []
    for name, s in pages.items():
        if s["status"] != 200:
            lines.append(f"{name}: {s['status']} ({s['note'][:80]})")
        elif s["meets_300ms"]:
            lines.append(f"{name}: p95 {s['p95_ms']} ms <= {TARGET_MS:g} ms: met")
        else:
            lines.append(
                f"{name}: p95 {s['p95_ms']} ms <= {TARGET_MS:g} ms: missed ({s['p95_ms'] / TARGET_MS:.1f}x)"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1_000_000)
    p.add_argument("--steps-per-run", type=int, default=10)
    p.add_argument("--repeat", type=int, default=30, help="timed requests per page (after 5 warm-up)")
    p.add_argument("--tagged", type=int, default=300, help="runs tagged through the API (the rare tag)")
    p.add_argument(
        "--page-budget-s", type=float, default=60.0,
        help=f"stop timing a page after this long once it has {MIN_TIMED} timed requests",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--out", metavar="FILE", help="write the result as JSON here too")
    p.add_argument("--warehouse", metavar="DIR", help="generate into DIR and keep it, or reuse it")
    args = p.parse_args(argv)
    if args.runs < 200 or args.steps_per_run < 1 or args.repeat < 1:
        p.error("--runs must be at least 200 (a second page), --steps-per-run and --repeat at least 1")

    tmp = args.warehouse or tempfile.mkdtemp(prefix="wrm-bench-console-")
    Path(tmp).mkdir(parents=True, exist_ok=True)
    wh = Warehouse.open(f"chdb://{tmp}", "wrm")
    result: dict[str, Any] = {"runs": args.runs, "steps_per_run": args.steps_per_run, "repeat": args.repeat}
    result["started"] = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        result.update(prepare(wh, args.runs, args.steps_per_run))
        result["tables"] = table_facts(wh)
        figures, all_ok = run(args, wh)
        result.update(figures)
    except RequestFailed as exc:
        print(f"request failed: {exc}", file=sys.stderr)
        return 1
    finally:
        wh.close()
        if not args.warehouse:
            shutil.rmtree(tmp, ignore_errors=True)
    # the whole process (generation, server, client): getrusage's high-water mark
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    for line in verdicts(result["pages"]):
        print(line, file=sys.stderr)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
