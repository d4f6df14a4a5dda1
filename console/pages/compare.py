"""/ui/compare: one version of a workflow against another, every indicator with its sample sizes,
its significance test and a verdict: what `wrm compare --baseline --candidate` prints.

"better" or "worse" is said only when the test passed on enough runs; a small sample reads
"not enough runs". Figures are read as a person reads them (analytics.figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from analytics import figures, indicators, significance
from analytics.reports.gather import LABELS, WHERE_PRESENT
from analytics.reports.gather import verdict as report_verdict
from analytics.reports.render import BADGES
from console.base import Console
from console.pages.effectiveness import Workflow, tenant_pair, viewer, workflows


@dataclass(frozen=True)
class Row:
    label: str
    baseline: str
    candidate: str
    change: str
    relative: str
    n: str  # `n = 210 / 210` (baseline / candidate)
    p: str
    verdict: str
    badge: str
    note: str


def rows(frame: pd.DataFrame) -> list[Row]:
    out = []
    order = {k: i for i, k in enumerate(LABELS)}
    records: list[Any] = list(frame.itertuples(index=False))
    for r in sorted(records, key=lambda r: order.get(str(r.indicator), len(order))):
        key = str(r.indicator)
        label, unit = LABELS.get(key, (key.replace("_", " "), indicators.UNITS.get(key, "count")))
        if key in WHERE_PRESENT and not (int(r.baseline_n) or int(r.candidate_n)):
            continue  # only where some run carries them, as in a report
        verdict = report_verdict(r)
        p = figures.p_value(r.p_value) if not figures.missing(r.p_value) else ""
        out.append(
            Row(
                label=label,
                baseline=figures.value(unit, r.baseline),
                candidate=figures.value(unit, r.candidate),
                change=figures.change(unit, r.delta),
                relative=figures.relative(r.relative_delta),
                n=f"n = {figures.count(r.baseline_n)} / {figures.count(r.candidate_n)}",
                p=p or figures.MISSING,
                verdict=verdict,
                badge=BADGES.get(verdict, "none"),
                note=" · ".join(x for x in (str(r.note or ""), str(r.test or "")) if x),
            )
        )
    return out


def add_routes(router: APIRouter, console: Console) -> None:
    @router.get("/compare", include_in_schema=False)
    @console.page_route
    async def compare(request: Request) -> Response:
        who = viewer(await console.visitor(request))
        known = await run_in_threadpool(workflows, console, who.tenant)
        params = request.query_params
        values = {
            name: params.get(name, "").strip()[:200]
            for name in ("workflow", "baseline", "candidate", "environment")
        }
        if not values["workflow"] and known:
            values["workflow"] = known[0].name
        current: Workflow | None = next((w for w in known if w.name == values["workflow"]), None)
        errors: dict[str, str] = {}
        message, table = "", None
        if values["baseline"] and values["baseline"] == values["candidate"]:
            errors["candidate"] = "pick a version other than the baseline"
        if current is None:
            message = (
                f"No runs of workflow {values['workflow']!r} here." if values["workflow"] else "No runs yet."
            )
        elif len(current.versions) < 2:
            only = current.versions[0] if current.versions else "none"
            message = f"{current.name} has run as one version only ({only}): there is nothing to compare yet."
        elif not (values["baseline"] and values["candidate"]):
            message = "Pick a baseline version (before) and a candidate version (after) to compare."
        elif not errors:
            sides = indicators.Sides.versions(values["baseline"], values["candidate"], values["environment"])
            try:
                frame = await run_in_threadpool(
                    indicators.compare, console.wh.reader, who.tenant, current.name, sides
                )
                table = rows(frame)
            except indicators.NoData as exc:
                text = str(exc).replace(f" (tenant {who.tenant!r})", "")
                message = text[:1].upper() + text[1:] + "."
        report = [("workflow", values["workflow"]), ("environment", values["environment"]), ("since", "90d")]
        report.append(("compare", f"{values['baseline']}..{values['candidate']}"))
        report_link = urlencode(tenant_pair(who) + [(k, v) for k, v in report if v])
        return console.render(
            request, who, "compare.html.j2", values=values, errors=errors, known=known, current=current,
            message=message, table=table, report_link=report_link, alpha=significance.ALPHA,
        )  # fmt: skip
