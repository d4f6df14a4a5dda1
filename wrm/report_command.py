"""`wrm report`: one workflow's indicator report as HTML, PDF or Markdown, written to a file.

Reads through the running server's SQL port when one answers (with WRM_KEY, the key's tenant
only), else opens the warehouse directly; says which on stderr, with a progress line per stage.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from analytics import reports
from analytics.reports.request import Comparison, ReportRequest, RequestError, parse_date, parse_since
from analytics.reports.scheduler import write_atomically
from wrm.reading import read_source
from wrm.settings import Settings


def add_parser(sub: Any, common: Any) -> None:
    rep = sub.add_parser(
        "report", help="an indicator report of one workflow (HTML, PDF or Markdown) with charts"
    )
    common(rep)
    rep.add_argument("--workflow", required=True, help="workflow name")
    rep.add_argument("--tenant", help="tenant id (default: the key's, WRM_KEY; else default)")
    rep.add_argument("--environment", default="", help="one environment (default: all)")
    rep.add_argument(
        "--since",
        required=True,
        help="Nd (the N days ending with --until, both included) or a first day YYYY-MM-DD",
    )
    rep.add_argument(
        "--until", help="last day included, YYYY-MM-DD (default: yesterday, the last whole UTC day)"
    )
    rep.add_argument(
        "--compare",
        default="previous",
        help="previous (the same number of days just before), V1..V2 (version V1 against V2 within "
        "the days), or none (default: previous)",
    )
    rep.add_argument("--format", choices=reports.FORMATS, help="default: from --out's extension, else html")
    rep.add_argument("--out", required=True, metavar="FILE", help="where to write the report (- for stdout)")
    rep.add_argument("--http", metavar="HOST:PORT", help="where to look for a running server")


def _request(args: argparse.Namespace, tenant: str) -> ReportRequest:
    # by default the days end with the last whole one: a day still running would read low
    until = parse_date(args.until) if args.until else datetime.now(UTC).date() - timedelta(days=1)
    return ReportRequest(
        workflow=args.workflow,
        tenant=tenant,
        since=parse_since(args.since, until),
        until=until,
        environment=args.environment,
        compare=Comparison.parse(args.compare),
    )


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    ext = Path(args.out).suffix.lstrip(".").lower()
    return (
        {"htm": "html", "markdown": "md"}.get(ext, ext)
        if ext in (*reports.FORMATS, "htm", "markdown")
        else "html"
    )


class _Progress:
    """One line on stderr per stage, with the time spent so far."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, stage: str) -> None:
        print(f"wrm report: {stage} … ({time.monotonic() - self.started:.1f} s)", file=sys.stderr)


def run_report(settings: Settings, args: argparse.Namespace) -> int:
    fmt = _format(args)
    if fmt == "pdf" and args.out == "-" and sys.stdout.isatty():
        print("wrm report: a PDF is not written to a terminal; give --out FILE", file=sys.stderr)
        return 2
    try:
        _request(args, args.tenant or "default")  # the period and comparison, checked before connecting
    except RequestError as exc:
        print(f"wrm report: {exc}", file=sys.stderr)
        return 2
    progress = _Progress()
    with read_source(settings, "report") as src:
        # through a server with a tenant key the SQL port shows that tenant only, whatever is asked
        tenant = "" if src.scoped else (args.tenant or "default")
        if src.scoped and args.tenant:
            print("wrm report: --tenant is ignored: a tenant key reads its own tenant", file=sys.stderr)
        request = _request(args, tenant)
        data = reports.build(src.client, request, source=_where(src.description), progress=progress)
    progress(f"rendering {fmt}")
    body = reports.render(data, fmt)
    if args.out == "-":
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        write_atomically(Path(args.out), body)  # whole or not at all
    if not data.has_runs:
        print(
            f"wrm report: no runs of {args.workflow!r} in {request.since} – {request.until}", file=sys.stderr
        )
    where = "stdout" if args.out == "-" else args.out
    print(f"wrm report: wrote {fmt} ({len(body):,} bytes) to {where}", file=sys.stderr)
    return 0


def _where(description: str) -> str:
    """How the report names its source: the running server's address, or the warehouse opened
    directly (never its path, which says nothing to a reader and may say too much)."""
    if description.startswith("via "):
        return description.removeprefix("via ")
    return "the warehouse, opened directly (no server was running)"
