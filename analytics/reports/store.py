"""Scheduled reports as the warehouse records them (table `reports`, sql/015): one row per fire of
a `[[reports]]` entry, ready or failed, with its files' paths relative to `reports_dir`.

The id is derived from the tenant, the schedule's name and the fire time, so writing a fire's
record twice keeps one report; the newest row of an id wins (ReplacingMergeTree, read FINAL).
Every read the API makes names the caller's tenant.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from analytics.runs.errors import InvalidInput
from warehouse import Warehouse

READY, FAILED = "ready", "failed"
_COLUMNS = (
    "tenant_id", "report_id", "name", "workflow", "environment", "since", "until", "compare",
    "scheduled_for", "created_at", "status", "error", "file_formats", "file_paths", "file_bytes",
    "file_sha256",
)  # fmt: skip
MAX_LIMIT = 500


@dataclass(frozen=True)
class ReportFile:
    format: str
    path: str  # relative to reports_dir: `<name>/<file name>`
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Report:
    tenant_id: str
    report_id: str
    name: str
    workflow: str
    environment: str
    since: date
    until: date
    compare: str
    scheduled_for: datetime  # the fire time it ran for (UTC)
    created_at: datetime
    status: str  # READY or FAILED
    error: str = ""  # why it failed: short, never an engine message
    files: tuple[ReportFile, ...] = field(default_factory=tuple)

    def file(self, fmt: str) -> ReportFile | None:
        return next((f for f in self.files if f.format == fmt), None)


def report_id(tenant: str, name: str, scheduled_for: datetime) -> str:
    """`rep_` + 24 hex digits of a hash of what the report is: the same fire, the same id."""
    parts = (tenant, name, scheduled_for.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    text = b"".join(b"%d:%s" % (len(b), b) for b in (p.encode() for p in parts))
    return "rep_" + hashlib.sha256(text).hexdigest()[:24]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _report(r: Sequence[Any]) -> Report:
    v = dict(zip(_COLUMNS, r, strict=True))
    files = tuple(
        ReportFile(f, p, int(b), s)
        for f, p, b, s in zip(
            v["file_formats"], v["file_paths"], v["file_bytes"], v["file_sha256"], strict=False
        )
    )
    return Report(
        tenant_id=v["tenant_id"], report_id=v["report_id"], name=v["name"], workflow=v["workflow"],
        environment=v["environment"], since=v["since"], until=v["until"], compare=v["compare"],
        scheduled_for=_utc(v["scheduled_for"]), created_at=_utc(v["created_at"]), status=v["status"],
        error=v["error"], files=files,
    )  # fmt: skip


def encode_cursor(report: Report) -> str:
    ms = int(report.scheduled_for.timestamp() * 1000)
    return base64.urlsafe_b64encode(f"{ms}:{report.report_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ms, rid = text.split(":", 1)
        if not rid.startswith("rep_"):
            raise ValueError(rid)
        return int(ms), rid
    except ValueError:
        raise InvalidInput("`cursor` is not a cursor this API returned") from None


class ReportStore:
    """Report records on `wh` (a handle of the caller's own)."""

    def __init__(self, wh: Warehouse) -> None:
        self._wh = wh

    def record(self, report: Report) -> None:
        r = report
        row: Mapping[str, Any] = {
            "tenant_id": r.tenant_id, "report_id": r.report_id, "name": r.name, "workflow": r.workflow,
            "environment": r.environment, "since": r.since, "until": r.until, "compare": r.compare,
            "scheduled_for": r.scheduled_for, "created_at": r.created_at, "status": r.status,
            "error": r.error, "file_formats": [f.format for f in r.files],
            "file_paths": [f.path for f in r.files], "file_bytes": [f.bytes for f in r.files],
            "file_sha256": [f.sha256 for f in r.files],
        }  # fmt: skip
        self._wh.insert_columns("reports", _COLUMNS, [[row[c]] for c in _COLUMNS])

    def last_fires(self) -> dict[tuple[str, str], datetime]:
        """(tenant, name) → the latest fire time recorded, ready or failed."""
        rows = self._wh.rows(
            "SELECT tenant_id, name, max(scheduled_for) FROM reports GROUP BY tenant_id, name"
        )
        return {(str(t), str(n)): _utc(at) for t, n, at in rows}

    def latest(self, tenant: str, name: str) -> Report | None:
        rows = self._wh.rows(
            f"SELECT {', '.join(_COLUMNS)} FROM reports FINAL WHERE tenant_id = {{t:String}} "
            "AND name = {n:String} ORDER BY scheduled_for DESC, report_id DESC LIMIT 1",
            {"t": tenant, "n": name},
        )
        return _report(rows[0]) if rows else None

    def get(self, tenant: str, rid: str) -> Report | None:
        rows = self._wh.rows(
            f"SELECT {', '.join(_COLUMNS)} FROM reports FINAL "
            "WHERE tenant_id = {t:String} AND report_id = {r:String} LIMIT 1",
            {"t": tenant, "r": rid},
        )
        return _report(rows[0]) if rows else None

    def page(
        self, tenant: str, name: str = "", workflow: str = "", limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Report], str | None]:
        """The tenant's reports, newest fire first; a cursor for the next page when there is one."""
        after_ms, after_id = decode_cursor(cursor) if cursor else (2**62, "")
        rows = self._wh.rows(
            f"SELECT {', '.join(_COLUMNS)} FROM reports FINAL WHERE tenant_id = {{t:String}} "
            "AND ({n:String} = '' OR name = {n:String}) AND ({w:String} = '' OR workflow = {w:String}) "
            "AND (toUnixTimestamp64Milli(scheduled_for), report_id) < ({ms:Int64}, {rid:String}) "
            "ORDER BY scheduled_for DESC, report_id DESC LIMIT {lim:UInt32}",
            {"t": tenant, "n": name, "w": workflow, "ms": after_ms, "rid": after_id or "~", "lim": limit + 1},
        )
        found = [_report(r) for r in rows]
        more = len(found) > limit
        found = found[:limit]
        return found, encode_cursor(found[-1]) if more and found else None
