"""ReportData values built by hand for the renderer tests: a full report, one with too few runs,
one with no runs, and one whose every user-supplied string is hostile."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from analytics.figures import Unit
from analytics.reports.content import (
    DayPoint,
    FailureReason,
    Indicator,
    PriceGap,
    ReportData,
    StepRetries,
    VersionBenefit,
)
from analytics.reports.request import Comparison
from analytics.reports.request import ReportRequest as Req

SINCE, UNTIL = date(2026, 11, 25), date(2026, 12, 1)
GENERATED = datetime(2026, 12, 2, 7, 0, 12, tzinfo=UTC)
SOURCE = "the running server at 127.0.0.1:8080"
HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_LINK = "[click](javascript:alert(1))"
RTL = "שלום עולם مرحبا"
LONG_REASON = "Timeout " + "x" * 1990  # 1,998 characters


def _request(workflow: str = "invoice-triage", compare: Comparison | None = None, env: str = "prod") -> Req:
    return Req(workflow, "acme", SINCE, UNTIL, env, compare or Comparison())


def _trend(runs: int = 320) -> tuple[DayPoint, ...]:
    fp = (0.86, 0.88, 0.85, 0.9, 0.87, 0.89, 0.875)
    return tuple(
        DayPoint(
            SINCE + timedelta(days=d),
            runs + 7 * d,
            runs + 7 * d - 3,
            fp[d],
            min(1.0, fp[d] + 0.07),
            1700 + 90 * (d % 3),
            0.0039 + 0.0001 * d,
        )
        for d in range(7)
    )


def _i(
    key: str,
    label: str,
    unit: Unit,
    now: float | None,
    n: int,
    before: float | None,
    b_n: int,
    verdict: str,
    test: str = "",
    p: float | None = None,
    note: str = "",
    higher: bool = True,
) -> Indicator:
    """An indicator with its deltas worked out, as the views compute them."""
    delta = None if now is None or before is None else now - before
    rel = None if delta is None or not before else delta / abs(before)
    return Indicator(key, label, unit, now, n, before, b_n, delta, rel, higher, verdict, test, p, note)


Z, T, U, SAME = "two-proportion z", "Welch t", "Mann-Whitney U", "no significant change"
SNAPSHOT = (
    _i("runs", "Runs", "count", 22460, 7, 20110, 7, "no test", note="a count of runs, not a sample"),
    _i("success_rate", "Success", "rate", 0.962, 340, 0.931, 310, "better", Z, 0.031),
    _i("first_pass_rate", "First-pass success", "rate", 0.875, 340, 0.88, 310, SAME, Z, 0.84),
    _i("quality_mean", "Quality score", "score", 0.81, 120, 0.79, 95, SAME, T, 0.42),
    _i("p95_duration_s", "p95 duration", "duration", 1920, 340, 1500, 310, "worse", U, 0.00004, higher=False),
    _i("tokens_per_run", "Tokens per run", "tokens", 12480, 340, 12990, 310, SAME, T, 0.3, higher=False),
    _i(
        "cost_per_run_usd",
        "Cost per run",
        "money",
        0.0042,
        340,
        0.0051,
        310,
        "better",
        T,
        0.0021,
        higher=False,
    ),
    _i(
        "runs_per_day",
        "Throughput",
        "per_day",
        3208.6,
        7,
        2872.9,
        7,
        "no test",
        note="a count per day, not a sample of runs",
    ),
    _i("human_share", "Human decisions", "rate", 0.12, 340, 0.18, 310, "better", Z, 0.04, higher=False),
    _i(
        "human_wait_s_per_run",
        "Human wait per run",
        "duration",
        95,
        340,
        140,
        310,
        "not enough runs",
        T,
        note="needs ≥ 30 runs per side (12 and 40)",
        higher=False,
    ),
    _i("cx_score_mean", "CX score", "score", None, 0, None, 0, "no test", note="no CX scores in these days"),
)


def full() -> ReportData:
    return ReportData(
        request=_request(),
        generated_at=GENERATED,
        source=SOURCE,
        current_label="2026-11-25 – 2026-12-01",
        before_label="the 7 days before",
        snapshot=SNAPSHOT,
        trend=_trend(),
        benefits=(
            VersionBenefit(
                "v2",
                "prod",
                "v1",
                datetime(2026, 11, 26, 9, 30, tzinfo=UTC),
                0.84,
                date(2026, 11, 29),
                3,
                0.881,
            ),
            VersionBenefit(
                "v3", "prod", "v2", datetime(2026, 11, 30, 14, tzinfo=UTC), 0.881, None, None, None
            ),
        ),
        failures=(
            FailureReason(
                "RateLimitError: 429 from the model provider",
                "draft_reply",
                18,
                ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736"),
            ),
            FailureReason(
                "validation failed: total does not match line items",
                "check_totals",
                9,
                ("run-0042", "run-0077", "run-0103"),
            ),
            FailureReason("", "fetch_invoice", 2, ("run-0200",)),
        ),
        retries=(
            StepRetries("draft_reply", 340, 412, 72, 30),
            StepRetries("fetch_invoice", 340, 351, 11, 2),
        ),
        unpriced_runs=12,
        price_gaps=(PriceGap("llama-3-70b", 40, 12),),
        notes=("Version v3 started on 2026-11-30; its figures cover 2 days.",),
    )


def too_few() -> ReportData:
    """Versions with a handful of runs each: every tested indicator reads "not enough runs"."""
    note = "needs ≥ 30 runs per side (6 and 8)"
    return ReportData(
        request=_request("refund-bot", Comparison.parse("1..2"), env=""),
        generated_at=GENERATED,
        source="the warehouse at ./data/engine",
        current_label="version 2",
        before_label="version 1",
        snapshot=(
            _i("runs", "Runs", "count", 8, 2, 6, 2, "no test", note="a count of runs, not a sample"),
            _i(
                "first_pass_rate",
                "First-pass success",
                "rate",
                1.0,
                8,
                0.5,
                6,
                "not enough runs",
                Z,
                note=note,
            ),
            _i(
                "p95_duration_s",
                "p95 duration",
                "duration",
                42.5,
                8,
                61,
                6,
                "not enough runs",
                U,
                note="needs ≥ 20 timed runs per side (6 and 8)",
                higher=False,
            ),
        ),
        trend=_trend(runs=1)[:2],
        benefits=(),
        failures=(),
        retries=(),
    )


def no_runs() -> ReportData:
    return ReportData(
        request=_request("quiet-workflow", Comparison("none")),
        generated_at=GENERATED,
        source=SOURCE,
        current_label="2026-11-25 – 2026-12-01",
        before_label="",
        snapshot=(Indicator("runs", "Runs", "count", 0, 0),),
        trend=(),
        benefits=(),
        failures=(),
        retries=(),
    )


def hostile() -> ReportData:
    """Every string a user or an instrumented app chose, made to break out of its place."""
    evil = f"{HOSTILE_SCRIPT} | pipe `tick` &amp; {HOSTILE_LINK}\nnext line"
    return ReportData(
        request=_request(f"wf {HOSTILE_SCRIPT} | x", env=f"env|{RTL}"),
        generated_at=GENERATED,
        source=f"<b>{SOURCE}</b>",
        current_label="2026-11-25 – 2026-12-01",
        before_label="the 7 days before",
        snapshot=(
            _i("runs", f"Runs {HOSTILE_SCRIPT}", "count", 40, 7, 38, 7, "no test", note=f"n|{HOSTILE_LINK}"),
        ),
        trend=_trend(runs=5)[:3],
        benefits=(VersionBenefit(f"v|{HOSTILE_SCRIPT}", f"e`{RTL}`", "v<0>", None, None, None, None, None),),
        failures=(
            FailureReason(evil, f"step|{HOSTILE_SCRIPT}", 3, (f"r|{HOSTILE_SCRIPT}", "run`1`", HOSTILE_LINK)),
            FailureReason(LONG_REASON, "step2", 1, ("r2",)),
            FailureReason(RTL, "step3", 1, ("r3",)),
        ),
        retries=(StepRetries(f"retry|{HOSTILE_SCRIPT}&amp;", 3, 5, 2, 1),),
        unpriced_runs=1,
        price_gaps=(PriceGap(f"model|{HOSTILE_SCRIPT}", 1, 1),),
        notes=(f"note {HOSTILE_SCRIPT} | {HOSTILE_LINK} &amp;", RTL),
    )


SAMPLES = {"full": full, "too_few": too_few, "no_runs": no_runs, "hostile": hostile}
