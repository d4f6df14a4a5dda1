"""`wrm export`: runs to a CSV, JSON lines or Parquet file, with the run list's filters and a
progress bar. Through the running server's /v1/runs/export when one answers, else from the
warehouse opened directly; either way the file is written as it streams in."""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime
from datetime import time as dt_time
from pathlib import Path
from typing import Any, BinaryIO

from analytics.runs.errors import InvalidInput
from analytics.runs.export import export_runs
from analytics.runs.listing import STATUSES, RunFilter, count_runs
from wrm.indicator_commands import day_arg
from wrm.reading import auth_headers, opened_directly, server_answers, server_url
from wrm.settings import Settings


def add_parser(sub: Any, common: Any) -> None:
    p = sub.add_parser("export", help="export runs (CSV, JSON lines, Parquet) with the run list's filters")
    common(p)
    p.add_argument("--format", choices=["csv", "jsonl", "parquet"], default="csv")
    p.add_argument("--out", metavar="FILE", help="where to write (default runs.FORMAT; - for stdout)")
    p.add_argument("--steps", action="store_true", help="include each run's steps")
    p.add_argument("--tenant", default=None, help="default: the key's tenant (WRM_KEY), else `default`")
    p.add_argument("--workflow", default="")
    p.add_argument("--version", dest="wf_version", metavar="VERSION", default="")
    p.add_argument("--environment", default="")
    p.add_argument("--status", action="append", choices=STATUSES, help="repeat for several")
    p.add_argument("--tag", default="")
    p.add_argument("--since", type=day_arg, help="Nd or YYYY-MM-DD")
    p.add_argument("--until", type=day_arg, help="Nd or YYYY-MM-DD")
    p.add_argument("--min-duration-ms", type=float)
    p.add_argument("--failure-text", default="")
    p.add_argument("--http", metavar="HOST:PORT", help="where to look for a running server")


def _filter(args: argparse.Namespace) -> RunFilter:
    def at(day: date | None) -> datetime | None:
        return None if day is None else datetime.combine(day, dt_time(), UTC)

    return RunFilter(
        workflow=args.workflow, version=args.wf_version, environment=args.environment,
        statuses=tuple(args.status or ()), tag=args.tag, since=at(args.since), until=at(args.until),
        min_duration_ms=args.min_duration_ms, failure_text=args.failure_text,
    )  # fmt: skip


class Progress:
    """A one-line bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self._drawn = total, 0, 0.0
        self._tty = sys.stderr.isatty()

    def add(self, runs: int) -> None:
        self.done += runs
        now = time.monotonic()
        if self._tty and now - self._drawn >= 0.1:
            self._drawn = now
            share = self.done / self.total if self.total else 1.0
            bar = "#" * int(share * 30)
            print(f"\r[{bar:<30}] {share:4.0%} {self.done:,} / {self.total:,} runs", end="", file=sys.stderr)

    def finish(self) -> None:
        if self._tty:
            print(file=sys.stderr)


def _headers(settings: Settings, args: argparse.Namespace) -> dict[str, str]:
    """The key decides the tenant; `--tenant` is sent only when given (or no key is set)."""
    tenant = args.tenant or ("" if settings.key else "default")
    return {**auth_headers(settings), **({"X-WRM-Tenant": tenant} if tenant else {})}


def run(settings: Settings, args: argparse.Namespace) -> int:
    flt = _filter(args)
    out_name = args.out or f"runs.{args.format}"
    url = server_url(settings)
    with _open_out(out_name) as out:
        try:
            if server_answers(url):
                print(f"wrm export: via the running server at {url}", file=sys.stderr)
                total, written = _via_server(url, settings, args, out)
            else:
                total, written = _direct(settings, args, flt, out, url)
        except InvalidInput as exc:
            print(f"wrm export: {exc}", file=sys.stderr)
            return 2
    where = "stdout" if out_name == "-" else out_name
    print(f"wrm export: {total:,} runs, {written / 2**20:.1f} MiB written to {where}", file=sys.stderr)
    return 0


def _open_out(name: str) -> Any:
    if name == "-":
        return _Stdout()
    return Path(name).open("wb")


class _Stdout:
    def __enter__(self) -> BinaryIO:
        return sys.stdout.buffer

    def __exit__(self, *exc: object) -> None:
        sys.stdout.buffer.flush()


def _direct(
    settings: Settings, args: argparse.Namespace, flt: RunFilter, out: BinaryIO, url: str
) -> tuple[int, int]:
    with opened_directly(settings, url, "export") as wh:
        tenant = args.tenant or "default"
        total = count_runs(wh.reader, tenant, flt)
        progress = Progress(total)
        written = _copy(export_runs(wh.reader, tenant, flt, args.format, with_steps=args.steps,
                                    progress=progress.add), out)  # fmt: skip
        progress.finish()
        return total, written


def _via_server(url: str, settings: Settings, args: argparse.Namespace, out: BinaryIO) -> tuple[int, int]:
    query: list[tuple[str, str]] = [("format", args.format), ("steps", str(args.steps).lower())]
    for name, value in (("workflow", args.workflow), ("version", args.wf_version),
                        ("environment", args.environment), ("tag", args.tag),
                        ("failure_text", args.failure_text)):  # fmt: skip
        if value:
            query.append((name, value))
    query += [("status", s) for s in args.status or ()]
    for name, day in (("since", args.since), ("until", args.until)):
        if day is not None:
            query.append((name, f"{day}T00:00:00Z"))
    if args.min_duration_ms is not None:
        query.append(("min_duration_ms", str(args.min_duration_ms)))
    request = urllib.request.Request(
        f"{url}/v1/runs/export?{urllib.parse.urlencode(query)}", headers=_headers(settings, args)
    )
    try:
        resp = urllib.request.urlopen(request, timeout=600)
    except urllib.error.HTTPError as exc:
        raise InvalidInput(exc.read().decode(errors="replace")) from None
    with resp:
        total = int(resp.headers.get("X-WRM-Run-Count", "0"))
        progress = Progress(total)
        lines = args.format != "parquet"  # CSV and JSON lines: a run a line (CSV after a header)
        seen = -1 if args.format == "csv" else 0

        def chunks() -> Iterator[bytes]:
            nonlocal seen
            while chunk := resp.read(1 << 16):
                if lines:
                    before, seen = seen, seen + chunk.count(b"\n")
                    progress.add(max(0, seen) - max(0, before))
                yield chunk

        written = _copy(chunks(), out)
        if not lines:
            progress.add(total)
        progress.finish()
    return total, written


def _copy(chunks: Iterator[bytes], out: BinaryIO) -> int:
    written = 0
    for chunk in chunks:
        out.write(chunk)
        written += len(chunk)
    return written
