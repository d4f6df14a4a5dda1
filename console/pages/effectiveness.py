"""/ui/effectiveness: one workflow's indicator report as a page (snapshot with verdicts, trend
charts, time to benefit, failure reasons, retries), its downloads, and the run export of its days.

Every figure comes from `analytics.reports.build` and every string from `render.view`, so the
page, the downloaded report and `wrm report` cannot disagree. Bad parameters are shown by their
field; nothing is read until they are fixed.
"""

from __future__ import annotations

import base64
import itertools
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from access import Forbidden, Role
from analytics import reports, significance
from analytics.api.reports_api import HTML_POLICY, MEDIA_TYPES
from analytics.reports import charts
from analytics.reports.content import ReportData
from analytics.reports.render import View
from analytics.reports.render import view as report_view
from analytics.reports.request import ReportRequest, parse_date, parse_since
from console.base import HEADERS, Console
from console.session import Visitor

PERIODS = ("7d", "30d", "90d")
DEFAULT_PERIOD = "30d"
MAX_DAYS = 400  # the summary tier's default retention: a longer page would show nothing more
_SVG_NS, _XLINK_NS = "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"
_WORKFLOWS = (
    "SELECT workflow_name, groupUniqArray(workflow_version), groupUniqArray(environment), sum(runs) AS n "
    "FROM runs_daily_store FINAL WHERE tenant_id = {t:String} GROUP BY workflow_name ORDER BY n DESC, "
    "workflow_name LIMIT 500"
)


@dataclass(frozen=True)
class Workflow:
    name: str
    versions: tuple[str, ...]
    environments: tuple[str, ...]


def workflows(console: Console, tenant: str) -> list[Workflow]:
    """The tenant's workflows, busiest first, with their versions and environments: one query on
    the summary tier, for the pickers."""
    rows = console.wh.reader.query(_WORKFLOWS, parameters={"t": tenant}).result_rows
    return [Workflow(str(r[0]), tuple(sorted(map(str, r[1]))), tuple(sorted(map(str, r[2])))) for r in rows]


def viewer(who: Visitor) -> Visitor:
    """Indicator pages read runs: viewer and up (an ingest-only key reads nothing)."""
    if not who.role.allows(Role.VIEWER):
        raise Forbidden("reading indicators needs a viewer, operator or admin key")
    return who


def tenant_pair(who: Visitor) -> list[tuple[str, str]]:
    """`?tenant=` kept in links for a platform caller looking at another tenant."""
    return [("tenant", who.tenant)] if who.platform and who.tenant != "default" else []


@dataclass
class EffQuery:
    """The page's parameters as the form shows them back, and the report request they make."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    request: reports.ReportRequest | None = None

    def link(self, who: Visitor, **changes: str) -> str:
        """This page's query string (with `changes`): for the downloads and the quick periods."""
        values = {**self.values, **changes}
        return urlencode(tenant_pair(who) + [(k, v) for k, v in values.items() if v])

    def export_link(self, who: Visitor, fmt: str) -> str:
        """The run list's export of these days (and workflow, environment)."""
        r = self.request
        assert r is not None
        pairs = [*tenant_pair(who), ("workflow", r.workflow)]
        pairs += [("environment", r.environment)] if r.environment else []
        pairs += [("since", r.since.isoformat()), ("until", r.until.isoformat()), ("format", fmt)]
        return urlencode(pairs)


def read(params: QueryParams, tenant: str, known: list[Workflow], today: date) -> EffQuery:
    q = EffQuery()
    limits = (("workflow", 200), ("environment", 200), ("since", 40), ("until", 40), ("compare", 410))
    for name, limit in limits:
        value = params.get(name, "").strip()
        if len(value) > limit:
            q.errors[name] = f"at most {limit} characters"
        q.values[name] = value[:limit]
    v = q.values
    if not v["workflow"] and known:
        v["workflow"] = known[0].name
    v["since"] = v["since"] or DEFAULT_PERIOD
    v["compare"] = v["compare"] or "previous"
    until = today - timedelta(days=1)
    if v["until"] and "until" not in q.errors:
        try:
            until = parse_date(v["until"])
        except reports.RequestError:
            q.errors["until"] = "a date YYYY-MM-DD (empty: yesterday, the last whole UTC day)"
    since = until
    if "since" not in q.errors:
        try:
            since = parse_since(v["since"], until)
        except reports.RequestError:
            q.errors["since"] = "7d, 30d, 90d (any Nd) or a first day YYYY-MM-DD"
    if not q.errors and since > until:
        q.errors["since"] = f"starts after the last day ({until})"
    elif not q.errors and (until - since).days >= MAX_DAYS:
        q.errors["since"] = f"at most {MAX_DAYS} days"
    comparison = reports.Comparison()
    if "compare" not in q.errors:
        try:
            comparison = reports.Comparison.parse(v["compare"])
        except reports.RequestError:
            q.errors["compare"] = "previous, none, or two different versions V1..V2"
    if not q.errors and until > today:
        q.errors["until"] = f"today ({today}) at the latest"
    if not q.errors and v["workflow"]:  # no workflow and none known: the page says there are no runs
        q.request = reports.ReportRequest(
            v["workflow"], tenant, since, until, environment=v["environment"], compare=comparison
        )
    return q


def _today() -> date:
    return datetime.now(UTC).date()


class _Built:
    """The page's report and charts, kept CACHE_S seconds per request (tenant, workflow, days,
    comparison): building one reads the summary tier and draws four charts (~1-2 s at 1M runs),
    and its figures only change when the summarizer refreshes a day of it. At most CACHE_SIZE
    requests are kept; the oldest goes first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[ReportRequest, tuple[float, ReportData, list[tuple[str, str, str]]]] = (
            OrderedDict()
        )

    def get(self, console: Console, request: ReportRequest) -> tuple[ReportData, list[tuple[str, str, str]]]:
        now = time.monotonic()
        with self._lock:
            hit = self._kept.get(request)
            if hit is not None and now - hit[0] < CACHE_S:
                return hit[1], hit[2]
        data = reports.build(console.wh.reader, request, steps=False)
        drawn = _charts(report_view(data))
        with self._lock:
            self._kept[request] = (now, data, drawn)
            self._kept.move_to_end(request)
            while len(self._kept) > CACHE_SIZE:
                self._kept.popitem(last=False)
        return data, drawn


CACHE_S = 60.0
CACHE_SIZE = 64
_CACHE = _Built()


def add_routes(router: APIRouter, console: Console) -> None:
    from console.pages import compare  # it reads this module's pickers

    compare.add_routes(router, console)

    @router.get("/effectiveness", include_in_schema=False)
    @console.page_route
    async def effectiveness(request: Request) -> Response:
        who = viewer(await console.visitor(request))
        known = await run_in_threadpool(workflows, console, who.tenant)
        q = read(request.query_params, who.tenant, known, _today())
        data: ReportData | None = None
        view: View | None = None
        drawn: list[tuple[str, str, str]] = []
        if q.request is not None:
            built, drawn = await run_in_threadpool(_CACHE.get, console, q.request)
            data, view = built, report_view(built)
        suffix = urlencode(tenant_pair(who))

        def run_link(run_id: str) -> str:
            return f"/ui/runs/{quote(run_id, safe='')}" + (f"?{suffix}" if suffix else "")

        current = next((w for w in known if w.name == q.values["workflow"]), None)
        pairs = _pairs(current.versions if current else ())
        return console.render(
            request, who, "effectiveness.html.j2", q=q, data=data, v=view, charts=drawn, run_link=run_link,
            known=known, current=current, pairs=pairs, periods=PERIODS, alpha=significance.ALPHA,
        )  # fmt: skip

    @router.get("/effectiveness/report.{fmt}", include_in_schema=False)
    @console.page_route
    async def report(request: Request, fmt: Literal["html", "pdf", "md"]) -> Response:
        who = viewer(await console.visitor(request))
        known = await run_in_threadpool(workflows, console, who.tenant)
        q = read(request.query_params, who.tenant, known, _today())
        if q.request is None:
            name, problem = next(iter(q.errors.items()), ("workflow", "no runs yet: nothing to report"))
            return console.problem(request, 400, "Cannot make this report", f"{name}: {problem}")
        data = await run_in_threadpool(reports.build, console.wh.reader, q.request)
        body = await run_in_threadpool(reports.render, data, fmt)
        r = q.request
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in r.workflow)[:80]
        headers = {
            "Content-Disposition": f'attachment; filename="{safe}-{r.since}-{r.until}.{fmt}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Referrer-Policy": HEADERS["Referrer-Policy"],
        }
        if fmt == "html":
            headers["Content-Security-Policy"] = HTML_POLICY
        return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)


def _charts(view: View) -> list[tuple[str, str, str]]:
    """The report's SVG charts as data: URIs for <img>: the console's CSP refuses the inline style
    attributes matplotlib writes, while an image's own document keeps them and fetches nothing."""
    return [
        (
            c.title,
            c.description if charts.has_data(c.key, view.trend_points) else charts.NO_DATA,
            "data:image/svg+xml;base64," + base64.b64encode(_standalone(svg).encode("utf-8")).decode("ascii"),
        )
        for c, svg in charts.svgs(view.trend_points)
    ]


def _standalone(svg: str) -> str:
    """An inline-ready chart as an SVG document: an image needs the namespaces an HTML parser supplies."""
    box = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
    size = f'width="{box.group(1)}" height="{box.group(2)}" ' if box else ""
    return svg.replace("<svg ", f'<svg xmlns="{_SVG_NS}" xmlns:xlink="{_XLINK_NS}" {size}', 1)


def _pairs(versions: tuple[str, ...]) -> list[str]:
    """Suggested version comparisons: each version against the next (by name)."""
    return [f"{a}..{b}" for a, b in itertools.pairwise(versions)][:20]
