"""`wrm indicators` and `wrm compare`: indicator frames printed as terminal tables, CSV or JSON."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from analytics import figures, indicators
from wrm.reading import Source, read_source
from wrm.settings import Settings

_SINCE_RE = re.compile(r"^(\d{1,5})d$")
# The table format reads each column in its unit (analytics.figures); CSV and JSON keep raw values.
_EFFECTIVENESS_COLUMNS = [
    "workflow_name", "workflow_version", "environment", "day", "runs", "in_progress", "completed", "failed",
    "canceled", "first_pass_rate", "success_rate", "validation_pass_rate", "quality_mean", "p50_duration_s",
    "p95_duration_s", "input_tokens_per_run", "output_tokens_per_run", "cost_per_run_usd",
    "human_decisions_per_run", "human_wait_s_per_run", "cx_score_mean",
]  # fmt: skip


def day_arg(text: str) -> date:
    """`30d` (that many days back from today, UTC) or a date `YYYY-MM-DD`."""
    m = _SINCE_RE.match(text.strip())
    if m:
        return datetime.now(UTC).date() - timedelta(days=int(m.group(1)))
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither Nd (days back) nor a date YYYY-MM-DD"
        ) from None


def add_parsers(sub: Any, common: Any) -> None:
    ind = sub.add_parser("indicators", help="effectiveness, throughput or time to benefit of a workflow")
    common(ind)
    ind.add_argument("--workflow", default="", help="workflow name (default: every workflow)")
    ind.add_argument("--tenant", help="tenant id (default: the key's, WRM_KEY; else default)")
    ind.add_argument(
        "--view", choices=["effectiveness", "throughput", "time-to-benefit"], default="effectiveness"
    )
    ind.add_argument(
        "--by", choices=["version", "day"], default="version", help="one row per version, or per day"
    )
    ind.add_argument(
        "--since", type=day_arg, default=None, help="Nd or YYYY-MM-DD (default: everything kept)"
    )
    ind.add_argument("--format", choices=["table", "csv", "json"], default="table")
    ind.add_argument("--http", metavar="HOST:PORT", help="where to look for a running server")
    cmp_ = sub.add_parser("compare", help="baseline against candidate: deltas and significance per indicator")
    common(cmp_)
    cmp_.add_argument("--workflow", required=True, help="workflow name")
    cmp_.add_argument("--tenant", help="tenant id (default: the key's, WRM_KEY; else default)")
    cmp_.add_argument("--baseline", metavar="VERSION", help="baseline version")
    cmp_.add_argument("--candidate", metavar="VERSION", help="candidate version")
    cmp_.add_argument("--before", type=day_arg, metavar="DATE", help="baseline: days before this one")
    cmp_.add_argument(
        "--after", type=day_arg, metavar="DATE", help="candidate: days from this one (default --before)"
    )
    cmp_.add_argument("--environment", default="", help="one environment (default: all)")
    cmp_.add_argument("--format", choices=["table", "csv", "json"], default="table")
    cmp_.add_argument("--http", metavar="HOST:PORT", help="where to look for a running server")


def _tenant(given: str | None, src: Source) -> str:
    """The tenant asked for; else, through a server with a key, '' (the key's own: the SQL port
    shows nothing else); else `default`."""
    return given or ("" if src.scoped else "default")


def run_indicators(settings: Settings, args: argparse.Namespace) -> int:
    since = args.since or indicators.FIRST_DAY
    with read_source(settings, "indicators") as src:
        args.tenant = _tenant(args.tenant, src)
        if args.view == "effectiveness":
            frame = indicators.effectiveness(src.client, args.tenant, args.workflow, by=args.by, since=since)
            frame = frame[[c for c in _EFFECTIVENESS_COLUMNS if c in frame.columns]]
        elif args.view == "throughput":
            frame = indicators.throughput(src.client, args.tenant, args.workflow, since=since)
        else:
            frame = indicators.time_to_benefit(src.client, args.tenant, args.workflow)
    if frame.empty:
        what = f"workflow {args.workflow!r}" if args.workflow else "any workflow"
        print(
            f"wrm indicators: no runs of {what} for tenant {args.tenant or 'of the key'!r} since {since}",
            file=sys.stderr,
        )
        return 1
    _emit(frame, args.format)
    return 0


def run_compare(settings: Settings, args: argparse.Namespace) -> int:
    by_version = args.baseline is not None or args.candidate is not None
    if by_version == (args.before is not None):
        print(
            "wrm compare: give --baseline and --candidate versions, or --before (and --after)",
            file=sys.stderr,
        )
        return 2
    try:
        sides = (
            indicators.Sides.versions(args.baseline or "", args.candidate or "", args.environment)
            if by_version
            else indicators.Sides.windows(args.before, args.after, args.environment)
        )
    except ValueError as exc:
        print(f"wrm compare: {exc}", file=sys.stderr)
        return 2
    with read_source(settings, "compare") as src:
        args.tenant = _tenant(args.tenant, src)
        try:
            frame = indicators.compare(src.client, args.tenant, args.workflow, sides)
        except indicators.NoData as exc:
            print(f"wrm compare: {exc}", file=sys.stderr)
            return 1
    if args.format != "table":
        _emit(frame.drop(columns=["baseline_sd", "candidate_sd"]), args.format)
        return 0
    base, cand = sides.describe()
    print(f"{args.workflow}: {base} (baseline) against {cand} (candidate)")
    table = pd.DataFrame(
        {
            "indicator": frame["indicator"],
            "baseline": [_cell(i, v) for i, v in zip(frame["indicator"], frame["baseline"], strict=True)],
            "candidate": [_cell(i, v) for i, v in zip(frame["indicator"], frame["candidate"], strict=True)],
            "delta": [_delta(i, v) for i, v in zip(frame["indicator"], frame["delta"], strict=True)],
            "change": [figures.relative(v) for v in frame["relative_delta"]],
            "n": [
                f"{figures.count(b)}/{figures.count(c)}"
                for b, c in zip(frame["baseline_n"], frame["candidate_n"], strict=True)
            ],
            "p": [figures.p_value(v) for v in frame["p_value"]],
            "verdict": [
                f"{v} ({d})" if d else (f"{v}: {n}" if n else v)
                for v, d, n in zip(frame["verdict"], frame["direction"], frame["note"], strict=True)
            ],
        }
    )
    print(table.to_string(index=False))
    return 0


def _emit(frame: pd.DataFrame, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", lines=True))
    else:
        shown = frame.copy()
        for col in shown.columns:
            shown[col] = [_cell(col, v) for v in shown[col]]
        print(shown.to_string(index=False))


def _cell(column: str, v: Any) -> str:
    """How a person reads `v` of `column` (analytics.figures): `32 min`, `22,460`, `$0.0042`."""
    if isinstance(v, pd.Timestamp | datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if v is pd.NaT or (not isinstance(v, str) and figures.missing(v)):
        return figures.MISSING
    unit = indicators.UNITS.get(column)
    if unit is not None:
        return figures.value(unit, v)
    if isinstance(v, float):
        return figures.plain(v, 4)
    if isinstance(v, int) and not isinstance(v, bool):
        return figures.count(v)
    return str(v)


def _delta(indicator: str, v: Any) -> str:
    unit = indicators.UNITS.get(indicator)
    return figures.change(unit, v) if unit is not None else figures.plain(v, 4)
