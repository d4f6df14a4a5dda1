"""/v1/reports: the scheduled reports of the caller's tenant, newest first, and their files.

Whoever reads runs reads reports (viewer and up). Another tenant's report does not exist here
(404). A file is served from the path its record holds, resolved under `reports_dir`: the URL
names a report and a format, never a path, and a record whose path leads outside reports_dir
(through `..`, an absolute path or a link) is refused and logged. A file deleted from disk is a
410. HTML is served with a Content-Security-Policy that lets an opened report run nothing and
fetch nothing (its charts are data: images, its styles inline).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import IO, Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from analytics.api.caller import Viewer
from analytics.api.problems import MEDIA_TYPE
from analytics.reports.scheduler import download_link
from analytics.reports.store import MAX_LIMIT, Report, ReportStore
from analytics.runs.errors import UnknownItem
from analytics.runs.schemas import Utc
from warehouse import Warehouse

log = logging.getLogger(__name__)

MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "md": "text/markdown; charset=utf-8",
}
HTML_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
Format = Literal["html", "pdf", "md"]
_CHUNK = 64 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")  # a file name in Content-Disposition: nothing to escape


class ReportFileOut(BaseModel):
    format: str
    bytes: int
    sha256: str
    download: str = Field(description="relative link: GET it with the same key")


class ReportOut(BaseModel):
    report_id: str
    name: str = Field(description="the [[reports]] entry")
    workflow: str
    environment: str = Field(description="'' for every environment")
    since: date = Field(description="first UTC day covered")
    until: date = Field(description="last UTC day covered (included)")
    compare: str
    scheduled_for: Utc = Field(description="the fire time it ran for")
    created_at: Utc
    status: Literal["ready", "failed"]
    error: str = Field(description="why it failed; '' when ready")
    files: list[ReportFileOut]


class ReportPage(BaseModel):
    reports: list[ReportOut]
    next_cursor: str | None


def _shown(r: Report) -> ReportOut:
    return ReportOut(
        report_id=r.report_id, name=r.name, workflow=r.workflow, environment=r.environment, since=r.since,
        until=r.until, compare=r.compare, scheduled_for=r.scheduled_for, created_at=r.created_at,
        status="ready" if r.status == "ready" else "failed", error=r.error,
        files=[
            ReportFileOut(format=f.format, bytes=f.bytes, sha256=f.sha256,
                          download=download_link(r.report_id, f.format))
            for f in r.files
        ],
    )  # fmt: skip


def _chunks(f: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := f.read(_CHUNK):
            yield chunk
    finally:
        f.close()


def inside(root: Path, relative: str) -> Path | None:
    """`relative` resolved under `root` (links followed), or None when it leads outside."""
    base = root.resolve()
    if not relative or Path(relative).is_absolute():
        return None
    found = (base / relative).resolve()
    return found if found.is_relative_to(base) and found != base else None


def build_router(warehouse: Warehouse, reports_dir: Path) -> APIRouter:
    """`warehouse`: the API's handle; `reports_dir`: where the scheduler writes the files."""
    router = APIRouter(prefix="/v1", tags=["reports"])
    store = ReportStore(warehouse)

    def _get(tenant: str, report_id: str) -> Report:
        found = store.get(tenant, report_id)
        if found is None:
            raise UnknownItem(f"no report {report_id[:80]!r}")
        return found

    @router.get("/reports", response_model=ReportPage)
    def list_reports(
        who: Viewer,
        name: Annotated[str, Query(max_length=64, description="one [[reports]] entry")] = "",
        workflow: Annotated[str, Query(max_length=256)] = "",
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> ReportPage:
        """The tenant's reports, newest fire first, ready and failed, a page at a time."""
        found, after = store.page(who.tenant, name, workflow, limit, cursor)
        return ReportPage(reports=[_shown(r) for r in found], next_cursor=after)

    @router.get("/reports/{report_id}", response_model=ReportOut)
    def get_report(who: Viewer, report_id: Annotated[str, PathParam(max_length=100)]) -> ReportOut:
        """One report: its period, comparison, status and files."""
        return _shown(_get(who.tenant, report_id))

    @router.get(
        "/reports/{report_id}/{format}",
        response_class=StreamingResponse,
        responses={
            200: {"content": {t: {} for t in MEDIA_TYPES.values()}, "description": "the file"},
            404: {"description": "no such report for this tenant, or no file of this format"},
            410: {"description": "the file was deleted from reports_dir (problem+json)"},
        },
    )
    def download_report(
        who: Viewer, report_id: Annotated[str, PathParam(max_length=100)], format: Format, request: Request
    ) -> Response:
        """The report's file of this format, as an attachment."""
        report = _get(who.tenant, report_id)
        file = report.file(format)
        if file is None:
            raise UnknownItem(f"report {report_id!r} has no {format} file")
        path = inside(reports_dir, file.path)
        if path is None:
            log.error(
                "report %s (tenant %s): refused: its %s file's recorded path leads outside reports_dir",
                report.report_id, report.tenant_id, format,
            )  # fmt: skip
            raise UnknownItem(f"report {report_id!r} has no {format} file that can be served")
        try:
            handle = path.open("rb")
        except (FileNotFoundError, NotADirectoryError):
            detail = (
                f"the {format} file of report {report_id} ({path.name}) was deleted from the server's "
                "reports_dir; the record stays, the file cannot be served again"
            )
            body = {"type": "https://wrm.dev/problems/gone", "title": "Gone", "status": 410,
                    "detail": detail, "instance": request.url.path}  # fmt: skip
            return JSONResponse(body, status_code=410, media_type=MEDIA_TYPE)
        headers = {
            "Content-Disposition": f'attachment; filename="{_UNSAFE.sub("_", path.name)}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Length": str(os.fstat(handle.fileno()).st_size),
        }
        if format == "html":
            headers["Content-Security-Policy"] = HTML_POLICY
        return StreamingResponse(_chunks(handle), media_type=MEDIA_TYPES[format], headers=headers)

    return router
