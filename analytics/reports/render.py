"""render(data, fmt) -> bytes: one `View` of a ReportData, laid out as HTML, Markdown or PDF.

The view holds every string a reader sees, each figure formatted once by `analytics.figures`, so
the three formats cannot disagree on a figure or a word; the format modules only lay the strings
out and escape them for their own syntax. View strings are plain text, never markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from analytics import figures
from analytics.reports.content import DayPoint, Indicator, ReportData
from analytics.reports.request import FORMATS

REASON_CHARS = 300  # a failure reason longer than this is cut: a report is not a log
NO_REASON = "(no reason recorded)"
BADGES = {
    "better": "better",
    "worse": "worse",
    "no significant change": "same",
    "not enough runs": "few",
    "no test": "none",
}


@dataclass(frozen=True)
class SnapshotRow:
    label: str
    current: str
    before: str
    change: str  # absolute, e.g. `+3.2 pt`
    relative: str  # e.g. `+4.1%`
    n: str  # `n = 340 / 310`
    verdict: str  # a VERDICTS word, or "" without a comparison
    badge: str  # a CSS-safe class name for the verdict
    note: str  # why there is no verdict, and the test with its p-value


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]  # right-aligned columns
    empty: str  # said instead of an empty table


@dataclass(frozen=True)
class View:
    title: str
    workflow: str
    tenant: str
    environment: str
    days: str  # `2026-11-25 – 2026-12-01 (7 days, UTC)`
    comparison: str  # `2026-11-25 – 2026-12-01 against the 7 days before`, or "no comparison"
    source: str
    generated: str
    no_runs: str  # a plain sentence when the report has no runs, else ""
    compared: bool
    snapshot: tuple[SnapshotRow, ...]
    benefits: Table
    trend: Table
    trend_points: tuple[DayPoint, ...]
    failures: Table
    retries: Table
    unpriced: str  # `Cost is partial: 12 runs of these days used models with no price …` or ''
    notes: tuple[str, ...]

    @property
    def meta(self) -> tuple[tuple[str, str], ...]:
        """The header's facts, in the order every format shows them."""
        return (
            ("Tenant", self.tenant),
            ("Environment", self.environment),
            ("Days", self.days),
            ("Comparison", self.comparison),
            ("Figures read from", self.source),
            ("Generated", self.generated),
        )


PRICES_HINT = "Add them to `prices` in the settings."


def render(data: ReportData, fmt: str) -> bytes:
    """The report as a document in `fmt` (html, pdf or md)."""
    if fmt not in FORMATS:
        raise ValueError(f"{fmt!r} is not a report format ({', '.join(FORMATS)})")
    page = view(data)
    if fmt == "html":
        from analytics.reports import html

        return html.render(page)
    if fmt == "md":
        from analytics.reports import markdown

        return markdown.render(page)
    from analytics.reports import pdf

    return pdf.render(page)


def view(data: ReportData) -> View:
    req = data.request
    compared = bool(data.before_label)
    days = f"{req.since.isoformat()} – {req.until.isoformat()} ({req.days} day{'s' * (req.days != 1)}, UTC)"
    return View(
        title=data.title,
        workflow=req.workflow,
        tenant=req.tenant or "the key's own (read through a tenant key)",
        environment=req.environment or "all environments",
        days=days,
        comparison=f"{data.current_label} against {data.before_label}" if compared else "no comparison",
        source=data.source or "not recorded",
        generated=_utc(data.generated_at),
        no_runs="" if data.has_runs else f"No runs of {req.workflow} in these days: nothing to report yet.",
        compared=compared,
        snapshot=tuple(_snapshot_row(i, compared) for i in data.snapshot),
        benefits=_benefits(data),
        trend=_trend(data.trend),
        trend_points=data.trend,
        failures=_failures(data),
        retries=_retries(data),
        unpriced=_unpriced(data),
        notes=data.notes,
    )


def _utc(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _snapshot_row(i: Indicator, compared: bool) -> SnapshotRow:
    notes = [i.note] if i.note else []
    if i.p_value is not None:
        p = figures.p_value(i.p_value)
        notes.append(f"p < {p[1:]}" if p.startswith("<") else f"p = {p}")
    if i.test and (i.p_value is not None or not i.note):
        notes.append(i.test)
    verdict = i.verdict if compared else ""
    return SnapshotRow(
        label=i.label,
        current=figures.value(i.unit, i.current),
        before=figures.value(i.unit, i.before) if compared else "",
        change=figures.change(i.unit, i.delta) if compared else "",
        relative=figures.relative(i.relative_delta) if compared else "",
        n=figures.sample_sizes(i.current_n, i.before_n if compared else None),
        verdict=verdict,
        badge=BADGES.get(verdict, "none"),
        note=" · ".join(notes),
    )


def _benefits(data: ReportData) -> Table:
    rows = tuple(
        (
            b.version,
            b.environment or "–",
            b.previous_version or "–",
            f"{b.first_run_in_env:%Y-%m-%d}" if b.first_run_in_env else figures.MISSING,
            figures.percent(b.baseline_first_pass_rate),
            b.benefit_day.isoformat() if b.benefit_day else "not yet",
            figures.count(b.days_to_benefit),
            figures.percent(b.rolling_first_pass_rate_at_benefit),
        )
        for b in data.benefits
    )
    headers = (
        "Version", "Environment", "Previous version", "First run", "First-pass before",
        "Benefit from", "Days to benefit", "First-pass then",
    )  # fmt: skip
    numeric = (False, False, False, False, True, False, True, True)
    return Table(headers, rows, numeric, "No version of this workflow has run yet.")


def _trend(points: tuple[DayPoint, ...]) -> Table:
    rows = tuple(
        (
            p.day.isoformat(),
            figures.count(p.runs),
            figures.count(p.finished),
            figures.percent(p.first_pass_rate),
            figures.percent(p.success_rate),
            figures.duration(p.p95_duration_s),
            figures.money(p.cost_per_run_usd),
        )
        for p in points
    )
    headers = ("Day (UTC)", "Runs", "Finished", "First-pass", "Success", "p95 duration", "Cost per run")
    return Table(headers, rows, (False, True, True, True, True, True, True), "No runs in these days.")


def _reason(text: str) -> str:
    text = " ".join(text.split())  # newlines and tabs are layout, not content
    if not text:
        return NO_REASON
    if len(text) <= REASON_CHARS:
        return text
    return f"{text[:REASON_CHARS].rstrip()}… (cut; {figures.count(len(text))} characters in all)"


def _failures(data: ReportData) -> Table:
    rows = tuple(
        (_reason(f.reason), f.failed_step or "–", figures.count(f.runs), ", ".join(f.example_run_ids) or "–")
        for f in data.failures
    )
    headers = ("Reason", "Failed step", "Runs", "Example runs")
    return Table(headers, rows, (False, False, True, False), "No failed runs.")


def _retries(data: ReportData) -> Table:
    rows = tuple(
        (
            r.step,
            figures.count(r.runs),
            figures.count(r.attempts),
            figures.count(r.retries),
            figures.per_run(r.retries / r.runs) if r.runs else figures.MISSING,
            figures.count(r.failed_attempts),
        )
        for r in data.retries
    )
    headers = ("Step", "Runs", "Attempts", "Retries", "Retries per run", "Failed attempts")
    return Table(headers, rows, (False, True, True, True, True, True), "No step was retried.")


def _plural(n: int, noun: str) -> str:
    return f"{figures.count(n)} {noun}{'s' * (n != 1)}"


def _unpriced(data: ReportData) -> str:
    if data.unpriced_runs <= 0 and data.before_unpriced_runs <= 0:
        return ""
    gaps = "; ".join(
        f"{g.model or '(no model name)'} ({_plural(g.steps, 'step')}, {_plural(g.runs, 'run')})"
        for g in data.price_gaps
    )
    parts = []
    if data.unpriced_runs > 0:
        n = data.unpriced_runs
        who = f"{figures.count(n)} runs of these days used models"
        if n == 1:
            who = "1 run of these days used a model"
        parts.append(f"{who} with no price when stored, counted at $0" + (f": {gaps}" if gaps else ""))
    if data.before_unpriced_runs > 0:
        parts.append(f"{_plural(data.before_unpriced_runs, 'run')} of the days before as well")
    return "Cost is partial: " + "; ".join(parts) + "."
