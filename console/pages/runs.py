"""The run list at /ui/: every filter of `GET /v1/runs`, keyset paging, auto-refresh of the first
page, export of the current filter."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from analytics.runs.listing import STATUSES, list_runs
from console import filters
from console.base import Console

PAGE = 50


def add_routes(router: APIRouter, console: Console) -> None:
    @router.get("/", include_in_schema=False)
    @console.page_route
    async def runs(request: Request) -> Response:
        who = await console.visitor(request)
        q = filters.read(request.query_params)
        page = None
        if not q.errors:
            page = list_runs(
                console.wh.reader, who.tenant, q.filter, limit=PAGE, cursor=q.cursor, sort=q.sort
            )
        template = "runs_rows.html.j2" if request.query_params.get("fragment") == "rows" else "runs.html.j2"
        return console.render(
            request, who, template, q=q, page=page, statuses=STATUSES, kinds=filters.FAILURE_KINDS
        )

    @router.get("/export", include_in_schema=False)
    @console.page_route
    async def export(request: Request, format: Literal["csv", "jsonl", "parquet"] = "csv") -> Response:
        who = await console.visitor(request)
        q = filters.read(request.query_params)
        if q.errors:
            field, problem = next(iter(q.errors.items()))
            return console.problem(request, 400, "Cannot export", f"{field}: {problem}")
        return await run_in_threadpool(console.exports.response, who.tenant, q.filter, format)
